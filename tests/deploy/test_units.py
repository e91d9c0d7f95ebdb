"""The systemd units under deploy/ are valid for systemd itself, and the agent's is
hardened; ``sysmon --version`` answers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sysmon import __version__

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy").glob("*.service"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    # systemd checks that ExecStart exists: point it at a binary this machine has.
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/usr/local/bin/sysmon", "/bin/true"))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not any(word in output for word in ("Unknown", "Invalid", "Failed")), output


def test_agent_unit_is_hardened() -> None:
    text = (ROOT / "deploy" / "sysmon-agent.service").read_text()
    for line in (
        "User=sysmon",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "UMask=0077",
    ):
        assert line in text.splitlines(), line


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sysmon", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0 and done.stdout.strip() == f"sysmon {__version__}"
