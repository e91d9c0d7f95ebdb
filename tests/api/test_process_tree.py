"""``GET /api/v1/metrics/processes?tree=1``: rows nested by ppid, ordered and limited by
subtree totals; the pure helpers (``parents``, ``process_tree``) tested directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmon.api.routes.processes import parents, process_tree
from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.main import create_app
from tests.support.server import serve


def row(pid: int, ppid: int | None, cpu: float, mem: float = 0.0, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"pid": pid, "name": f"p{pid}", "cpu_percent": cpu}
    out["memory_percent"] = mem
    if ppid is not None:
        out["ppid"] = ppid
    return {**out, **extra}


# init(1) -> nginx master(10, idle) -> two workers; a busy loner (50, parent not listed).
ROWS = [
    row(1, 0, 0.0, 0.1),
    row(10, 1, 0.0, 0.5),
    row(11, 10, 30.0, 2.0),
    row(12, 10, 25.0, 2.0),
    row(50, 7, 40.0, 9.0),
]


def shape(nodes: list[dict[str, Any]]) -> list[Any]:
    return [(n["pid"], shape(n["children"])) for n in nodes]


def test_tree_nests_by_ppid_and_sums_subtrees() -> None:
    roots = process_tree(ROWS, "cpu_percent")
    assert shape(roots) == [(1, [(10, [(11, []), (12, [])])]), (50, [])]
    assert roots[0]["subtree_cpu_percent"] == 55.0  # ranks above the 40 % loner
    assert roots[0]["subtree_memory_percent"] == pytest.approx(4.6)
    assert roots[0]["children"][0]["subtree_cpu_percent"] == 55.0
    assert roots[1]["subtree_cpu_percent"] == 40.0


def test_tree_sorted_by_memory_subtrees() -> None:
    roots = process_tree(ROWS, "memory_percent")
    assert [r["pid"] for r in roots] == [50, 1]  # 9.0 > 4.6


def test_every_row_once_and_input_untouched() -> None:
    before = json.dumps(ROWS)
    roots = process_tree(ROWS, "cpu_percent")
    seen: list[int] = []
    stack = list(roots)
    while stack:
        n = stack.pop()
        seen.append(n["pid"])
        stack.extend(n["children"])
    assert sorted(seen) == [1, 10, 11, 12, 50]
    assert json.dumps(ROWS) == before, "rows are copied, never mutated"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # 2 -> 3 -> 4 -> 2: broken at the lowest pid, which becomes the root.
        ([row(2, 4, 1.0), row(3, 2, 1.0), row(4, 3, 1.0)], {3: 2, 4: 3}),
        # A process its own parent (pid 0 style) is a root.
        ([row(5, 5, 1.0)], {}),
        # Missing ppid (an old stored table), parent not listed, non-int ppid: roots.
        ([row(6, None, 1.0), row(7, 99, 1.0), {**row(8, None, 1.0), "ppid": "6"}], {}),
        # A cycle hanging off a chain: 20 -> 21 -> 22 -> 21 (cycle 21/22; 20 hangs on 21).
        ([row(20, 21, 1.0), row(21, 22, 1.0), row(22, 21, 1.0)], {20: 21, 22: 21}),
    ],
)
def test_parents_guard_cycles_and_strays(
    rows: list[dict[str, Any]], expected: dict[int, int]
) -> None:
    assert parents(rows) == expected
    roots = process_tree(rows, "cpu_percent")
    assert sum(1 for _ in _walk(roots)) == len(rows)


def test_deep_chain_needs_no_recursion() -> None:
    rows = [row(1, 0, 1.0)] + [row(i, i - 1, 1.0) for i in range(2, 5000)]
    roots = process_tree(rows, "cpu_percent")
    assert len(roots) == 1 and roots[0]["subtree_cpu_percent"] == 4999.0


def _walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    stack = list(nodes)
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n["children"])


# ---------------------------------------------------------------- over HTTP
@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = load_settings(None, database={"path": str(tmp_path / "sysmon.db")})
    app = create_app(
        settings,
        clock=FakeClock(start=1_800_000_000.0),
        channel=tmp_path / "none.sock",
        start_agent=False,
    )
    with serve(app) as running, httpx.Client(base_url=running.base_url, timeout=10) as c:
        body = json.dumps({"timestamp": 5.0, "metrics": {}, "processes": ROWS, "errors": {}})
        meta = {"type": "tick", "timestamp": 5.0, "processes": ROWS, "status": {}}
        app.state.feed.on_frame(meta, body.encode())
        yield c


def test_tree_over_http_limit_applies_to_roots(client: httpx.Client) -> None:
    r = client.get("/api/v1/metrics/processes", params={"tree": 1, "limit": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tree"] is True and body["limit"] == 1 and body["sort"] == "cpu"
    assert shape(body["processes"]) == [(1, [(10, [(11, []), (12, [])])])]
    assert body["processes"][0]["subtree_cpu_percent"] == 55.0


def test_flat_answer_unchanged(client: httpx.Client) -> None:
    body = client.get("/api/v1/metrics/processes", params={"limit": 2}).json()
    assert "tree" not in body
    assert [p["pid"] for p in body["processes"]] == [50, 11]
    assert "children" not in body["processes"][0]


def test_tree_bad_value_is_422(client: httpx.Client) -> None:
    r = client.get("/api/v1/metrics/processes", params={"tree": "maybe"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "tree"]
