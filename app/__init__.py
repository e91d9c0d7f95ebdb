"""Checkout shim, not part of the wheel: the package is ``sysmon``. It exists so that the
spec's ``uvicorn app.main:app`` works from a checkout."""
