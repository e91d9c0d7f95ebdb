"""``/api/v1/metrics/processes``: the process table (flat or as a tree), live or at a past
instant, and the history of some processes from the stored tables.

A module of its own (not part of ``metrics.py``) because the process table is not a
time series of the catalog: its routes answer rows, and its router is included before
the metrics router so ``/processes`` is matched before ``/{metric}``.

Tree (``?tree=1``): the rows nested by ``ppid``; each row gains ``children`` and the
subtree totals ``subtree_cpu_percent`` / ``subtree_memory_percent`` (the row plus all
its descendants *in the table*). Roots are rows whose parent is not in the table (the
table is the top N, so most roots are just processes whose parent did not make the
cut). Siblings and roots are ordered by the subtree total of the sort key, descending,
and ``limit`` applies to the roots: a busy worker pool under one idle master ranks by
what the whole pool uses, and a root is never shown without its subtree. ``ppid``
cycles cannot happen in one listing, but rows come from separate reads (and stored
tables of older versions have no ``ppid``), so the tree is built defensively: a cycle is
broken at its lowest pid, which becomes a root; a row without ``ppid`` is a root.

History (``/processes/history?name=postgres`` or ``?pid=``): from the stored tables
(one every ``retention.processes_every``), per grid point the sums of the matching
rows of the first table stored in it; see ``ProcessHistoryQuery``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from sysmon.api.deps import ClockDep, FeedDep, SettingsDep, StoreDep, StoreReadsDep
from sysmon.api.errors import query_instant, unprocessable
from sysmon.api.feed import sees_command_lines
from sysmon.api.responses import JSONBody
from sysmon.api.schemas import ProcessesResponse
from sysmon.storage.base import ProcessHistoryQuery
from sysmon.timeparse import parse_instant

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

NOT_YET = {"detail": "no collection yet"}


@router.get(
    "/processes",
    response_model=ProcessesResponse,
    summary="Top processes by CPU or memory, live or at a past instant",
)
async def processes(
    request: Request,
    feed: FeedDep,
    store: StoreDep,
    reads: StoreReadsDep,
    limit: Annotated[int, Query(ge=1, le=100, description="How many processes (1-100)")] = 10,
    sort: Annotated[Literal["cpu", "memory"], Query(description="Sort key")] = "cpu",
    at: Annotated[
        str | None, Query(description="Epoch seconds or ISO 8601: the table stored at that time")
    ] = None,
    tree: Annotated[
        bool,
        Query(
            description="Nest rows by ppid (each row gains children and subtree totals); "
            "limit applies to the roots, ordered by subtree total"
        ),
    ] = False,
) -> Response:
    key = "cpu_percent" if sort == "cpu" else "memory_percent"
    if at is not None:
        try:
            instant = parse_instant(at)
        except ValueError as exc:
            raise unprocessable("query", "at", str(exc)) from None
        found = await reads.run(store.query_processes, instant)
        if found is None:
            return JSONBody(
                status_code=404, content={"detail": "no process table stored near that time"}
            )
        timestamp, stored = found
        rows = [dict(r) for r in stored]
        if not sees_command_lines(request.scope, feed.roles_apply):
            rows = [{k: v for k, v in r.items() if k != "cmdline"} for r in rows]
    else:
        view = feed.get()
        if view is None:
            return JSONBody(status_code=503, content=NOT_YET)
        timestamp = view.timestamp
        _, rows = view.for_role(sees_command_lines(request.scope, feed.roles_apply))
    if tree:
        roots = process_tree(rows, key)[:limit]
        return JSONBody(
            {"timestamp": timestamp, "sort": sort, "limit": limit, "tree": True, "processes": roots}
        )
    ordered = sorted(rows, key=lambda r: _number(r.get(key)), reverse=True)[:limit]
    return JSONBody({"timestamp": timestamp, "sort": sort, "limit": limit, "processes": ordered})


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else -1.0


HISTORY_MAX_POINTS = 500
"""Default points of a process history answer (each point reads at most one table)."""
INTEGER_FIELDS = frozenset({"rss_bytes", "count"})


@router.get(
    "/processes/history",
    responses={
        404: {"description": "The store keeps no process tables"},
        422: {"description": "Bad or missing name/pid, start, end, max_points"},
    },
    summary="CPU, memory and count of some processes over time, from the stored tables",
)
async def process_history(
    store: StoreDep,
    reads: StoreReadsDep,
    settings: SettingsDep,
    clock: ClockDep,
    name: Annotated[
        str | None, Query(min_length=1, description="Process name (exact match)")
    ] = None,
    pid: Annotated[int | None, Query(ge=0, description="Process id, instead of name")] = None,
    start: Annotated[
        str | None, Query(description="Epoch seconds or ISO 8601; default end - 1 h")
    ] = None,
    end: Annotated[str | None, Query(description="Epoch seconds or ISO 8601; default now")] = None,
    max_points: Annotated[
        int, Query(ge=2, le=2000, description="Upper bound on returned points")
    ] = HISTORY_MAX_POINTS,
) -> Response:
    """Per point: ``cpu_percent``, ``memory_percent``, ``rss_bytes`` summed over the
    matching rows and their ``count`` (0: a table was stored, nothing matched; null: no
    table stored in that step). Only the top-N rows are stored, so a process that was
    not among them counts as absent."""
    if (name is None) == (pid is None):
        raise unprocessable("query", "name", "give exactly one of name and pid")
    if not store.capabilities().process_tables or not isinstance(store, ProcessHistoryQuery):
        return JSONBody(
            status_code=404,
            content={"detail": f"the {store.capabilities().backend} store keeps no process tables"},
        )
    t_end = query_instant("end", end, clock.time())
    t_start = query_instant("start", start, t_end - settings.api.default_range_seconds)
    if t_start > t_end:
        raise unprocessable("query", "start", "start must not be after end")
    found = await reads.run(store.process_history, t_start, t_end, max_points, name, pid)
    return JSONBody(
        {
            "name": name,
            "pid": pid,
            "start": t_start,
            "end": t_end,
            "step_seconds": found.step_seconds,
            "timestamps": found.timestamps,
            "fields": {
                k: [v if v is None or k not in INTEGER_FIELDS else round(v) for v in values]
                for k, values in found.fields.items()
            },
            "tables_parsed": found.tables_parsed,
        }
    )


def parents(rows: Sequence[Mapping[str, object]]) -> dict[int, int]:
    """``pid -> ppid`` for every row whose parent is another row of the table, with any
    cycle broken at its lowest pid (which then has no parent, i.e. is a root)."""
    pids = {r["pid"] for r in rows if isinstance(r.get("pid"), int)}
    parent: dict[int, int] = {}
    for r in rows:
        child, ppid = r.get("pid"), r.get("ppid")
        if isinstance(child, int) and isinstance(ppid, int) and ppid != child and ppid in pids:
            parent[child] = ppid
    settled: set[int] = set()  # pids whose chain is known to reach a root
    for start in sorted(parent):
        path: list[int] = []
        on_path: set[int] = set()
        pid: int | None = start
        while pid is not None and pid not in settled:
            if pid in on_path:  # a cycle: the members are path[path.index(pid):]
                del parent[min(path[path.index(pid) :])]
                break
            path.append(pid)
            on_path.add(pid)
            pid = parent.get(pid)
        settled.update(path)
    return parent


def process_tree(rows: Sequence[Mapping[str, object]], key: str) -> list[dict[str, Any]]:
    """The rows as a forest (see the module docstring): every row exactly once, each a
    copy with ``children`` and ``subtree_cpu_percent``/``subtree_memory_percent``;
    roots and siblings ordered by ``subtree_<key>`` descending, then by pid."""
    nodes: dict[int, dict[str, Any]] = {}
    loose: list[dict[str, Any]] = []  # rows without an int pid: roots, never parents
    for r in rows:
        node: dict[str, Any] = {**r, "children": []}
        pid = r.get("pid")
        if isinstance(pid, int) and pid not in nodes:
            nodes[pid] = node
        else:
            loose.append(node)
    parent = parents(list(nodes.values()))
    for pid, ppid in parent.items():
        nodes[ppid]["children"].append(nodes[pid])
    roots = [n for pid, n in nodes.items() if pid not in parent] + loose
    # Post-order without recursion (a deep chain must not hit the recursion limit).
    order: list[dict[str, Any]] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node["children"])
    fields = ("cpu_percent", "memory_percent")
    for node in reversed(order):
        for f in fields:
            node[f"subtree_{f}"] = _total(node.get(f)) + math.fsum(
                c[f"subtree_{f}"] for c in node["children"]
            )
        node["children"].sort(key=lambda n: _rank(n, key))
    roots.sort(key=lambda n: _rank(n, key))
    return roots


def _total(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _rank(node: Mapping[str, Any], key: str) -> tuple[float, int]:
    pid = node.get("pid")
    return (-float(node[f"subtree_{key}"]), pid if isinstance(pid, int) else -1)
