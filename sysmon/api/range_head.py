"""Recent raw range requests answered from the ``LiveHead``, below FastAPI.

``HeadRangeMiddleware`` sits inside authentication, rate limits and the range cache (every
check above it applies) and in front of FastAPI's routing. A ``GET
/api/v1/metrics/<metric>`` whose parameters are all plainly valid, and whose window the
head covers on the raw grid the store would answer it on, gets the document
``series_document`` builds for the route, from memory, with no thread hop and none of the
framework's per-request validation (most of a range request's cost). Anything else, a
parameter the route would refuse among them, goes on to the route unchanged: its 422s,
its store read, its cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import get_args
from urllib.parse import parse_qsl

from fastapi import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from sysmon.api.cache import PREFIX, send_json
from sysmon.api.deps import StoreReads
from sysmon.api.errors import query_instant
from sysmon.api.head import LiveHead
from sysmon.api.routes.metrics import NOT_SERIES, RANGE_PARAMS, series_document
from sysmon.catalog import MetricCatalog
from sysmon.clock import Clock
from sysmon.config import ApiConfig
from sysmon.errors import QueryError
from sysmon.models import Labels
from sysmon.serialize import to_json_bytes
from sysmon.storage.base import (
    Aggregate,
    RangeQuery,
    RawGrid,
    RawGridQuery,
    SeriesResult,
    TimeSeriesStore,
)

logger = logging.getLogger(__name__)

RESOLUTIONS = ("auto", "raw")
"""What the head can answer: other resolutions are rollup tiers."""
AGGREGATES = get_args(Aggregate)


@dataclass(frozen=True, slots=True)
class HeadRange:
    """What answering from the head needs (built in the server's lifespan)."""

    head: LiveHead
    store: RawGridQuery
    catalog: MetricCatalog
    api: ApiConfig
    clock: Clock

    def respond(self, path: str, query_string: bytes) -> bytes | None:
        """The answer's body, or ``None``: the route answers."""
        metric = path[len(PREFIX) :]
        entry = self.catalog.metrics.get(metric)
        if entry is None or metric in NOT_SERIES:
            return None
        params: dict[str, str] = {}
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if name in params:
                return None
            params[name] = value
        selectors: list[tuple[str, str]] = []
        for name, value in params.items():
            if name in RANGE_PARAMS:
                continue
            if name not in entry.labels:
                return None
            if value:
                selectors.append((name, value))
        resolution = params.get("resolution", "auto")
        agg = params.get("agg", "mean")
        if params.get("host") or resolution not in RESOLUTIONS or agg not in AGGREGATES:
            return None
        max_points = self.api.max_points
        if "max_points" in params:
            given = params["max_points"]
            if not (given.isascii() and given.isdigit() and len(given) <= 5):
                return None
            max_points = int(given)
            if not 10 <= max_points <= 10_000:
                return None
        try:
            end = query_instant("end", params.get("end"), self.clock.time())
            start = query_instant(
                "start", params.get("start"), end - self.api.default_range_seconds
            )
        except HTTPException:  # the route's 422
            return None
        if start > end:
            return None
        labels = tuple(sorted(selectors))
        query = RangeQuery(metric, start, end, labels, resolution, agg, max_points)  # type: ignore[arg-type]
        try:
            grid = self.store.raw_grid(query)
        except QueryError:
            return None
        if grid is None:
            return None
        found = self.head.answer(metric, labels, grid)
        if found is None:
            return None
        # NaN is written as null like the store's None; integer fields are rounded (by
        # series_document), which NaN cannot be.
        integers = self.catalog.integer_fields.get(metric, ())
        fields: dict[str, list[float | None]] = {
            name: [None if v != v else v for v in values] if name in integers else values  # type: ignore[misc]
            for name, values in found.items()
        }
        result = SeriesResult(
            metric, labels, grid.resolution, agg, grid.step, grid.timestamps, fields, None
        )
        return to_json_bytes(series_document(self.catalog, labels, start, end, result))


class HeadRangeMiddleware:
    def __init__(self, app: ASGIApp, source: Callable[[], HeadRange | None]) -> None:
        self.app = app
        self._source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(PREFIX)
            and (source := self._source()) is not None
        ):
            body = source.respond(scope["path"], scope["query_string"])
            if body is not None:
                await send_json(send, body)
                return
        await self.app(scope, receive, send)


BACKFILL_PAUSE_SECONDS = 10.0
"""At most one backfill per this many seconds (resets from a flapping channel)."""


async def backfill(
    head: LiveHead,
    store: TimeSeriesStore,
    reads: StoreReads,
    catalog: MetricCatalog,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Whenever the head's coverage starts anew (server start, agent restart, a dropped
    frame), copy the store's raw slots of the window before it, read in a worker thread,
    so recent windows are answered from memory at once. Runs until cancelled."""
    while True:
        await head.started.wait()
        head.started.clear()
        await _fill_once(head, store, reads, catalog)
        await sleep(BACKFILL_PAUSE_SECONDS)


async def _fill_once(
    head: LiveHead, store: TimeSeriesStore, reads: StoreReads, catalog: MetricCatalog
) -> None:
    """One backfill. A function of its own so that what the store answered (every
    series' window as Python lists: ~0.9 MiB at the default 900 slots) is dropped once
    copied into the head, not held by the loop until the next reset."""
    epoch, covered = head.epoch, head.covered
    if covered is None:
        return
    try:
        series = await reads.run(read_back, store, catalog, head, covered[0])
    except Exception as exc:  # the store answers meanwhile; next reset tries again
        logger.warning("live head: reading the store back failed: %s", exc)
    else:
        head.fill(epoch, series)


def read_back(
    store: TimeSeriesStore, catalog: MetricCatalog, head: LiveHead, before: float
) -> list[tuple[str, Labels, RawGrid, dict[str, list[float | None]]]]:
    """The store's raw answers, for every series the head keeps, of the head's window
    ending one slot before ``before`` (a worker thread)."""
    if not isinstance(store, RawGridQuery):
        return []
    start = before - (head.slots - 1) * head.step
    end = before - head.step
    if end < start:
        return []
    found = []
    for metric in catalog.metrics:
        if metric in NOT_SERIES:
            continue
        for labels in store.series(metric):
            if not head.keeps(metric, labels):
                continue
            query = RangeQuery(metric, start, end, labels, "raw", "mean", head.slots)
            grid = store.raw_grid(query)
            if grid is not None:
                found.append((metric, labels, grid, store.query(query).fields))
    return found
