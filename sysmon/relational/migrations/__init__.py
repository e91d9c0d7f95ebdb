"""Alembic migrations of the relational tables (run by ``sysmon.relational.migrate``).

``env.py`` is Alembic's entry point; ``alerts/`` and ``auth/`` are the two histories,
each with its own version table (``alembic_version_alerts``, ``alembic_version_auth``),
because on SQLite they live in different files. They ship inside the package (wheel
included), so an installed sysmon migrates its own databases on start.
"""
