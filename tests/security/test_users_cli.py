"""``sysmon user`` and ``sysmon key`` in a subprocess, the way an operator runs them, on
the same database file the server reads (a user added here logs in over HTTP)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sysmon.clock import FakeClock
from sysmon.security.passwords import Passwords
from sysmon.security.store import AuthStore
from tests.security.auth_support import START, jwt_settings
from tests.support.process import ROOT, service_env
from tests.support.stack import stack

ALICE_PW = "alice-from-the-cli-1"


def sysmon(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sysmon", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=service_env(tmp_path / "sysmon.db"),
        timeout=60,
        check=False,
    )


def _hash(tmp_path: Path, name: str) -> str:
    store = AuthStore(tmp_path / "auth.db")
    store.open()
    try:
        user = store.get_user(name)
        assert user is not None
        return user.password_hash
    finally:
        store.close()


def test_user_add_list_passwd_delete(tmp_path: Path) -> None:
    added = sysmon(
        tmp_path,
        "user",
        "add",
        "alice",
        "--role",
        "admin",
        "--password-stdin",
        stdin=ALICE_PW + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout == "user alice added (admin)\n"
    assert Passwords().verify(_hash(tmp_path, "alice"), ALICE_PW)
    assert (tmp_path / "auth.db").stat().st_mode & 0o777 == 0o600

    viewer = sysmon(
        tmp_path,
        "user",
        "add",
        "victor",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="victor-from-the-cli\n",
    )
    assert viewer.returncode == 0, viewer.stderr
    listed = sysmon(tmp_path, "user", "list")
    assert listed.returncode == 0
    rows = [line.split()[:2] for line in listed.stdout.splitlines()]
    assert rows == [["NAME", "ROLE"], ["alice", "admin"], ["victor", "viewer"]]

    again = sysmon(
        tmp_path,
        "user",
        "add",
        "alice",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="whatever-password\n",
    )
    assert again.returncode == 1 and "already exists" in again.stderr

    changed = sysmon(
        tmp_path, "user", "passwd", "alice", "--password-stdin", stdin="a-new-Secret-pw\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert Passwords().verify(_hash(tmp_path, "alice"), "a-new-Secret-pw")
    missing = sysmon(tmp_path, "user", "passwd", "nobody", "--password-stdin", stdin="x" * 9)
    assert missing.returncode == 1 and "no user 'nobody'" in missing.stderr

    last = sysmon(tmp_path, "user", "delete", "alice")
    assert last.returncode == 1 and "last admin" in last.stderr
    assert sysmon(tmp_path, "user", "delete", "victor").returncode == 0
    assert sysmon(tmp_path, "user", "delete", "alice", "--force").returncode == 0
    assert sysmon(tmp_path, "user", "list").stdout.splitlines()[1:] == []

    for result in (added, viewer, again, changed, missing, last):
        assert ALICE_PW not in result.stdout + result.stderr
        assert "a-new-Secret-pw" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--role", "admin"], "", "use --password-stdin"),
        (["--role", "admin", "--password-stdin"], "short\n", "at least 8 characters"),
        (["--role", "root", "--password-stdin"], "long-enough-pw\n", "invalid choice"),
    ],
)
def test_user_add_refuses(tmp_path: Path, args: list[str], stdin: str, message: str) -> None:
    result = sysmon(tmp_path, "user", "add", "pat", *args, stdin=stdin)
    assert result.returncode != 0
    assert message in result.stderr


def test_key_create_list_revoke(tmp_path: Path) -> None:
    created = sysmon(tmp_path, "key", "create", "prometheus", "--role", "viewer")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sysmon_") and "shown only now" in created.stderr
    listed = sysmon(tmp_path, "key", "list")
    assert key not in listed.stdout
    header, row = listed.stdout.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "ROLE", "PREFIX"]
    assert row.split()[:3] == ["1", "prometheus", "viewer"] and row.split()[-1] == "-"
    assert sysmon(tmp_path, "key", "revoke", "1").returncode == 0
    assert sysmon(tmp_path, "key", "list").stdout.splitlines()[1].split()[-1] != "-"
    again = sysmon(tmp_path, "key", "revoke", "1")
    assert again.returncode == 1 and "no active key 1" in again.stderr


def test_a_user_added_by_the_cli_logs_in_over_http(tmp_path: Path) -> None:
    added = sysmon(
        tmp_path,
        "user",
        "add",
        "alice",
        "--role",
        "admin",
        "--password-stdin",
        stdin=ALICE_PW + "\n",
    )
    assert added.returncode == 0, added.stderr
    settings = jwt_settings(tmp_path)
    with stack(settings, FakeClock(start=START)) as running:
        answer = httpx.post(
            running.base_url + "/api/v1/auth/token",
            data={"username": "alice", "password": ALICE_PW},
        )
        assert answer.status_code == 200
        # ... and a key made by the CLI while the server runs works at once.
        key = sysmon(tmp_path, "key", "create", "script", "--role", "admin").stdout.strip()
        audit = httpx.get(running.base_url + "/api/v1/audit", headers={"X-API-Key": key})
        assert audit.status_code == 200
        events = [(e["event"], e["actor"]) for e in audit.json()["events"]]
        assert ("user.create", "cli") in events and ("login", "alice") in events
