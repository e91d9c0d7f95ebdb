from __future__ import annotations

from typing import Any

import pytest

from .fakes import load_ticks


@pytest.fixture
def ticks() -> list[dict[str, Any]]:
    """The three canned ticks of ``tests/fixtures/linux_host.json`` (fresh copies)."""
    return load_ticks()
