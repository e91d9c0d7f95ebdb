"""Authentication and roles (being built: see issue 10)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from app.config import Settings


def install_auth(app: FastAPI, settings: Settings) -> None:
    """Not yet implemented: adds nothing."""
