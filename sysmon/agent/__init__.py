"""The agent process: collectors, each on its own clock, the store writer (rollups,
retention, integrity checks) and alert evaluation with its notifications.

It shares nothing with the server process but the database and the live-tick channel
(``sysmon.channel``), so a flood of API clients cannot take its descriptors, threads or GIL.
"""
