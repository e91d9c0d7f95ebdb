"""``/api/v1/metrics``: the catalog, the live snapshot, time series from the store, top
processes.

What metrics, fields and label keys exist is never listed here: it comes from the
collectors' declarations (``sysmon.catalog``), so a new collector or plugin is served,
selectable and documented in OpenAPI without editing this module:

* ``GET /api/v1/metrics`` answers the catalog itself;
* the range endpoint accepts every declared label key as a selector (``?mount=/``,
  ``?sensor=...``) and answers 422 naming any other query parameter (a typo such as
  ``?mountt=/`` would otherwise silently answer the totals);
* ``install_catalog`` puts the metric names (``{metric}`` enum) and the selector
  parameters into the OpenAPI document;
* fields declared ``integer`` are JSON integers in range answers, rollup means included;
* ``?host=`` picks whose series (a store shared by several agents; ``GET /api/v1/hosts``
  lists them): not a label key of any collector but a parameter of the range endpoint,
  validated against the store's hosts (422 naming ``host`` with the known ones). Without
  it the answer is the store's own host. Live data (``current``) is the tick of the
  agent this server follows, whatever the host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams
from starlette.routing import Route

from sysmon.api.cache import ResponseCache, cache_key
from sysmon.api.deps import (
    ClockDep,
    SettingsDep,
    StoreDep,
    StoreReadsDep,
)
from sysmon.api.errors import query_instant, unprocessable
from sysmon.api.feed import TickFeed, sees_command_lines
from sysmon.api.head import LiveHead
from sysmon.api.responses import JSONBody
from sysmon.api.routes.hosts import check_host
from sysmon.api.schemas import (
    CatalogResponse,
    CurrentResponse,
    SeriesResponse,
)
from sysmon.catalog import MetricCatalog
from sysmon.models import Labels
from sysmon.storage.base import RangeQuery, SeriesResult

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

NOT_YET = {"detail": "no collection yet"}
RANGE_PARAMS = ("start", "end", "resolution", "agg", "max_points", "host")
"""The range endpoint's own query parameters; every other one must be a label key."""
NOT_SERIES = frozenset({"processes"})
"""Metrics whose ``/api/v1/metrics/<name>`` path is another endpoint (the process table):
their series are in ``current`` and the catalog, not behind the range endpoint."""
RANGE_PATH = "/api/v1/metrics/{metric}"


def _catalog(request: Request) -> MetricCatalog:
    catalog: MetricCatalog = request.app.state.catalog
    return catalog


@router.get(
    "",
    response_model=CatalogResponse,
    summary="Every metric: its fields (unit, kind, labels, integer) and label keys",
)
async def catalog(request: Request) -> Response:
    """From the collectors' declarations (plugins included), whether enabled or not: the
    dashboard builds its charts from this, and a client types each field by ``integer``."""
    return JSONBody(_catalog(request).document())


@router.get(
    "/current",
    response_model=CurrentResponse,
    responses={503: {"description": "No collection has completed yet"}},
    summary="Latest snapshot of every metric (from memory)",
)
async def current(request: Request) -> Response:
    """Also mounted as a plain Starlette route ahead of FastAPI's (see ``FAST_ROUTES``):
    it only returns bytes serialised once per tick, so the framework's per-request
    dependency machinery would be most of its cost."""
    feed: TickFeed = request.app.state.feed
    view = feed.get()
    if view is None:
        return JSONBody(status_code=503, content=NOT_YET)
    body, _ = view.for_role(sees_command_lines(request.scope, feed.roles_apply))
    return Response(content=body, media_type="application/json")


FAST_ROUTES = [Route("/api/v1/metrics/current", current, methods=["GET"])]


@router.get(
    "/{metric}",
    response_model=SeriesResponse,
    responses={404: {"description": "Unknown device, mount, interface or core"}},
    summary="Time series of one metric (totals, or one series by its labels)",
)
async def metric_range(
    request: Request,
    metric: str,
    store: StoreDep,
    reads: StoreReadsDep,
    settings: SettingsDep,
    clock: ClockDep,
    start: Annotated[
        str | None, Query(description="Epoch seconds or ISO 8601; default end - 1 h")
    ] = None,
    end: Annotated[str | None, Query(description="Epoch seconds or ISO 8601; default now")] = None,
    resolution: Annotated[
        Literal["auto", "raw", "1m", "5m", "1h"], Query(description="Tier; auto picks one")
    ] = "auto",
    agg: Annotated[Literal["mean", "min", "max"], Query(description="Bucket aggregate")] = "mean",
    max_points: Annotated[
        int | None, Query(ge=10, le=10_000, description="Upper bound on returned points")
    ] = None,
    host: Annotated[
        str | None,
        Query(description="Whose series (GET /api/v1/hosts); default the store's own host"),
    ] = None,
) -> Response:
    """Selectors are the label keys of the catalog (``?mount=/``): not declared here, so
    ``install_catalog`` lists them in the OpenAPI document."""
    catalog = _catalog(request)
    entry = catalog.metrics.get(metric)
    if entry is None or metric in NOT_SERIES:
        known = [n for n in catalog.names() if n not in NOT_SERIES]
        raise unprocessable("path", "metric", f"unknown metric {metric!r}; known: {known}")
    given = _selectors(request.query_params, catalog)
    now = clock.time()
    t_end = query_instant("end", end, now)
    t_start = query_instant("start", start, t_end - settings.api.default_range_seconds)
    if t_start > t_end:
        raise unprocessable("query", "start", "start must not be after end")
    for label in given:
        if label not in entry.labels:
            raise unprocessable("query", label, f"{metric} has no {label} series")
    labels: Labels = tuple(sorted(given.items()))
    cache: ResponseCache = request.app.state.range_cache
    key = cache_key(request.url.path, request.scope["query_string"])
    generation = cache.generation()
    host = host or None  # ?host= (empty) is the default, like an empty selector
    if host is not None:
        await check_host(request, store, reads, host)
    if labels:
        await _check_series(store, reads, metric, labels, host)
    result = await reads.run(
        store.query,
        RangeQuery(
            metric=metric,
            start=t_start,
            end=t_end,
            labels=labels,
            resolution=resolution,
            agg=agg,
            max_points=max_points or settings.api.max_points,
            host=host,
        ),
    )
    head: LiveHead | None = getattr(request.app.state, "live_head", None)
    if head is not None and host is None:
        head.learn(metric, labels, list(result.fields))
    response = JSONBody(series_document(catalog, labels, t_start, t_end, result))
    if key is not None:
        cache.remember(key, generation, bytes(response.body))
    return response


def series_document(
    catalog: MetricCatalog, labels: Labels, start: float, end: float, result: SeriesResult
) -> dict[str, Any]:
    """The JSON document of a range answer (the route's and ``LiveHead``'s)."""
    metric = result.metric
    units = {info.field: info.unit for info in catalog.metrics[metric].fields}
    integers = catalog.integer_fields.get(metric)
    return {
        "metric": metric,
        "labels": dict(labels),
        "start": start,
        "end": end,
        "resolution": result.resolution,
        "agg": result.agg,
        "step_seconds": result.step_seconds,
        "partial_from": result.partial_from,
        "timestamps": result.timestamps,
        "fields": integral_fields(result.fields, integers) if integers else result.fields,
        "units": {f: units.get(f, "") for f in result.fields},
    }


def integral_fields(
    fields: Mapping[str, list[float | None]], integers: frozenset[str]
) -> dict[str, list[Any]]:
    """``fields`` with each field of ``integers`` as ints (rounded half to even; ``None``
    gaps kept). Rollup means of whole numbers are rounded too: the field's unit is 1 (a
    byte, a process), and one type per field lets a client read it without checking.

    Converted per field, only for integer fields; the conversion (about 60 ns a value)
    pays for itself in the JSON encoder, which writes an int about four times faster
    than a float (tests/contract/bench_serialize.py)."""
    return {
        name: [v if v is None else round(v) for v in values] if name in integers else values
        for name, values in fields.items()
    }


def _selectors(params: QueryParams, catalog: MetricCatalog) -> dict[str, str]:
    """The label selectors of a range request; 422 naming a parameter that is neither the
    endpoint's own nor a label key some collector declares. Empty values are no selector
    (``?mount=`` = totals), as before."""
    given: dict[str, str] = {}
    for name, value in params.multi_items():
        if name in RANGE_PARAMS:
            continue
        if name not in catalog.label_keys:
            accepted = ", ".join((*RANGE_PARAMS, *catalog.label_keys))
            raise unprocessable(
                "query", name, f"unknown query parameter {name!r}; accepted: {accepted}"
            )
        if value:
            given[name] = value
    return given


async def _check_series(
    store: StoreDep, reads: StoreReadsDep, metric: str, labels: Labels, host: str | None = None
) -> None:
    """422 unless ``labels`` is exactly the label set of a stored series of ``metric``
    (of ``host``), naming the first selector and the values that exist (a typo'd mount
    gets the list)."""
    if host is None:
        stored = await reads.run(store.series, metric)
    else:
        stored = await reads.run(store.series, metric, host)
    if labels in stored:
        return
    keys = tuple(k for k, _ in labels)
    first = keys[0]
    if len(keys) == 1:
        names = sorted({s[0][1] for s in stored if len(s) == 1 and s[0][0] == first})
        if names:
            raise unprocessable("query", first, f"unknown {first} {labels[0][1]!r}; known: {names}")
    else:
        names = sorted("/".join(v for _, v in s) for s in stored if tuple(k for k, _ in s) == keys)
        if names:
            value = "/".join(v for _, v in labels)
            raise unprocessable(
                "query", first, f"unknown {'/'.join(keys)} {value!r}; known: {names}"
            )
    combos = sorted({"+".join(k for k, _ in s) for s in stored if s})
    if not combos or not any(first in combo.split("+") for combo in combos):
        raise unprocessable("query", first, f"{metric} has no {first} series")
    raise unprocessable(
        "query",
        first,
        f"no {metric} series is labelled exactly {'+'.join(keys)}; "
        f"give one selector per label of a series: {combos}",
    )


def install_catalog(app: FastAPI, catalog: MetricCatalog) -> None:
    """Serve ``catalog`` to the routes above and document it in the OpenAPI schema.

    The routes are declared once for every app, but the metrics depend on the app's
    settings (``collection.plugins``), so the ``{metric}`` enum and the selector
    parameters are added to the generated schema, once, when it is first built.
    """
    app.state.catalog = catalog
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_catalog(build(), catalog)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_catalog(schema: dict[str, Any], catalog: MetricCatalog) -> None:
    """Add the catalog's metric names and label keys to the range operation of ``schema``."""
    operation = schema.get("paths", {}).get(RANGE_PATH, {}).get("get")
    if operation is None:
        return
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    names = [n for n in catalog.names() if n not in NOT_SERIES]
    for param in parameters:
        if param.get("in") == "path" and param.get("name") == "metric":
            param["schema"] = {"type": "string", "enum": names, "title": "Metric"}
            param["description"] = "A metric of the catalog (GET /api/v1/metrics)"
    for key in catalog.label_keys:
        users: Sequence[str] = [n for n in names if key in catalog.metrics[n].labels]
        parameters.append(
            {
                "name": key,
                "in": "query",
                "required": False,
                "schema": {"type": "string", "title": key.capitalize()},
                "description": f"The series labelled {key}=<value> instead of the totals "
                f"(metrics: {', '.join(users) or 'none served here'}); one per label key",
            }
        )
