"""``uvicorn app.main:app`` from a checkout (the spec's command): the same lazily built
server as ``uvicorn sysmon.main:app``. Installed wheels have no ``app`` package."""

from sysmon.main import __getattr__ as __getattr__
from sysmon.main import create_app as create_app
