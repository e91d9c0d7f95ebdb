"""Where the dashboard's third-party files come from (one list, read by the server and
by ``setup.py``; standard library only, so the build can load it without the package).

In a checkout they are read from ``node_modules`` (``npm ci``); a wheel carries copies in
``sysmon/web/vendor/<name>``, made at build time, and those win when present.
"""

from __future__ import annotations

from pathlib import Path

SOURCES: dict[str, str] = {
    "uplot": "uplot/dist",
    "swagger-ui": "swagger-ui-dist",
    "redoc": "redoc/bundles",
}
"""Name served under ``/static/vendor/<name>`` -> folder under ``node_modules``."""

PACKAGED = Path(__file__).resolve().parent / "vendor"
CHECKOUT_NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"


def vendor_dir(name: str) -> Path:
    """The folder to serve ``name`` from: the wheel's copy, else the checkout's npm one."""
    packaged = PACKAGED / name
    if packaged.is_dir():
        return packaged
    return CHECKOUT_NODE_MODULES / SOURCES[name]
