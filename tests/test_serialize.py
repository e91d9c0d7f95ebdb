"""The frame's JSON pieces: cached process rows and spliced members read back exactly."""

from __future__ import annotations

import json

import pytest

from sysmon import serialize
from sysmon.models import Collected, Sample, Snapshot
from sysmon.serialize import RowJSON, snapshot_document, snapshot_json, with_member


def _snapshot(rows: tuple[dict[str, object], ...]) -> Snapshot:
    return Snapshot(
        timestamp=12.0,
        results={
            "cpu": Collected(samples=(Sample("cpu", "usage_percent", 5.5),)),
            "processes": Collected(samples=(Sample("processes", "count", 3.0),), rows=rows),
        },
        errors={"disk": "missed its 0.9s deadline"},
    )


def test_snapshot_json_reads_back_as_the_document() -> None:
    rows = tuple({"pid": i, "name": f"p{i}", "cmdline": 'a "q" \\ é'} for i in range(5))
    snap = _snapshot(rows)
    ints = {"processes": frozenset({"count"})}
    got = json.loads(snapshot_json(snap, 3, ints, RowJSON()))
    assert got == snapshot_document(snap, 3, ints)
    assert got["processes"] == [dict(r) for r in rows[:3]]
    assert got["metrics"]["processes"]["total"]["count"] == 3 and isinstance(
        got["metrics"]["processes"]["total"]["count"], int
    )


def test_rows_are_encoded_once_while_the_same_object_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[object] = []
    real = serialize.to_json_bytes

    def counting(document: object) -> bytes:
        encoded.append(document)
        return real(document)

    monkeypatch.setattr(serialize, "to_json_bytes", counting)
    cache = RowJSON()
    same, changed = {"pid": 1, "cpu_percent": 1.0}, {"pid": 2, "cpu_percent": 2.0}
    assert json.loads(cache.encode([same, changed])) == [same, changed]
    assert json.loads(cache.encode([same])) == [same], "same tick, a shorter view"
    assert encoded == [same, changed]
    cache.rotate()
    replacement = {"pid": 2, "cpu_percent": 9.5}  # a new row object: encoded afresh
    assert json.loads(cache.encode([same, replacement])) == [same, replacement]
    assert encoded == [same, changed, replacement]
    cache.rotate()
    cache.rotate()
    assert json.loads(cache.encode([same])) == [same]
    assert encoded[-1] is same, "not used for a whole tick: forgotten"
    assert cache.encode([]) == b"[]"


def test_with_member_adds_a_key_last() -> None:
    assert with_member(b"{}", "k", b"[1]") == b'{"k":[1]}'
    assert json.loads(with_member(b'{"a":1}', 'we"ird', b"null")) == {"a": 1, 'we"ird': None}


def test_json_bytes_are_what_the_standard_library_reads_back() -> None:
    """orjson with the standard encoder's leniencies: non-string keys become strings,
    unknown types their ``str``; non-finite floats become ``null`` (the standard library
    would write ``NaN``, which is not JSON)."""
    from pathlib import PurePosixPath

    document = {
        1: "one",
        "nested": {2.5: [1, 2.25, None, True]},
        "path": PurePosixPath("/var/lib/sysmon"),
        "gap": float("nan"),
        "inf": float("-inf"),
        "big": 2**63 + 5,
        "text": 'caf\u00e9 \u2603 "quoted"',
    }
    encoded = serialize.to_json_bytes(document)
    assert json.loads(encoded) == {
        "1": "one",
        "nested": {"2.5": [1, 2.25, None, True]},
        "path": "/var/lib/sysmon",
        "gap": None,
        "inf": None,
        "big": 2**63 + 5,
        "text": 'caf\u00e9 \u2603 "quoted"',
    }
    assert serialize.from_json(encoded) == json.loads(encoded)


def test_strings_that_are_not_utf8_are_written_as_escapes() -> None:
    """Names the OS decoded with ``surrogateescape`` (a command line that is not UTF-8)
    are written as ``\\xff`` text instead of failing the whole document; keys too."""
    odd = b"bad\xff\xfename".decode("utf-8", "surrogateescape")
    document = {"cmdline": odd, odd: [odd, ("x", "\ud800")], "fine": "caf\u00e9"}
    assert json.loads(serialize.to_json_bytes(document)) == {
        "cmdline": "bad\\xff\\xfename",
        "bad\\xff\\xfename": ["bad\\xff\\xfename", ["x", "\\ud800"]],
        "fine": "caf\u00e9",
    }
