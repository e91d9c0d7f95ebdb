"""Relational data (users, keys, sessions, audit log, alert state) through SQLAlchemy.

SQLite files by default, PostgreSQL when ``relational.url`` says so (``config``, which
imports no SQLAlchemy: the settings load in processes that never touch a database); one
``Database`` per store with the same transaction rules on both (``database``); the
tables (``tables``); Alembic migrations run on start (``migrate``).
"""
