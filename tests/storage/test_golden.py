"""Every answer of a multi-day workload is bit-identical to the pre-split store's.

The fixture was generated once, from the single-class ``SQLiteStore`` before it was split
into the ``sysmon.storage.sqlite`` package (see ``tests/storage/golden.py`` for the
workload and the command). A float is compared by ``repr``, so one ulp or ``-0.0`` for
``0.0`` fails, with the query named in the message.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.storage import golden

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "storage_golden.json"


@pytest.fixture
def db_dir(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs directory when the host has one: the workload checkpoints the WAL after
    every maintenance step, and those fsyncs (not the store's code) would make the run
    10x slower on a busy disk. The answers do not depend on where the file lives."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
            yield Path(tmp)
    else:
        yield tmp_path


def _canon(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_every_answer_matches_the_pre_split_store(db_dir: Path) -> None:
    expected = json.loads(FIXTURE.read_text())
    seen: list[str] = []

    def check(now: float, got: golden.Answers) -> None:
        want = expected[repr(now)]
        seen.append(repr(now))
        assert got["series"] == want["series"]
        assert got["rows"] == want["rows"]
        assert _canon(got["processes"]) == _canon(want["processes"])
        assert sorted(got["queries"]) == sorted(want["queries"])
        for key, answer in want["queries"].items():
            assert _canon(got["queries"][key]) == _canon(answer), f"{key} at {now}"

    golden.run(db_dir / "golden.db", check)
    assert seen == sorted(expected)
    # Not vacuous: the merged, unmerged and fallback paths all answered something.
    last = expected[seen[-1]]["queries"]
    assert last["cpu{} 1h mean history"]["fields"]["percent"][0] is not None
    assert last["cpu{} raw max last40m"]["resolution"] == "raw"
    assert last["cpu{} raw mean outage"]["resolution"] == "5m"
    assert last["cpu{} raw mean all"]["resolution"] == "1h"
    assert last["cpu{} raw max last6h"]["step"] == 10 * golden.SECOND_INTERVAL
