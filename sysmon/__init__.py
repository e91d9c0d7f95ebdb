"""sysmon: a single-server system resource monitor."""

__version__ = "0.1.0"
