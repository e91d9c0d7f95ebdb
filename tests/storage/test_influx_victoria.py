"""The InfluxDB 2 write path (``api: v2``: ``/api/v2/write?org=&bucket=&precision=ns``
with ``Authorization: Token``) against a real VictoriaMetrics server (Debian's
``victoria-metrics``), which accepts InfluxDB line protocol there.

What VictoriaMetrics stored is read back through its own ``/api/v1/export`` (not
through ``InfluxStore``, which reads InfluxQL): measurement ``system_metrics`` and field
``percent`` become the series ``system_metrics_percent``; the tags ``host``,
``metric_type`` and the sample labels become its labels; timestamps are kept to the
millisecond (VictoriaMetrics' resolution).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sysmon.clock import FakeClock
from sysmon.storage.influx import InfluxStore
from tests.storage.helpers import T0, snap
from tests.support.victoria import VictoriaServer, victoria_server

MOUNTS = ["/", "/mnt/my disk", "/mnt/a,b=c", "/media/\"q\" 'x'", "/mnt/ünï/データ", r"/m\s", "/t\\"]


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaServer]:
    with victoria_server(tmp_path_factory.mktemp("influx-victoria")) as server:
        yield server


def export(vm: VictoriaServer, host: str) -> list[dict[str, Any]]:
    vm.flush()
    response = httpx.post(
        f"{vm.url}/api/v1/export",
        data={
            "match[]": f'{{__name__=~"system_metrics_.+",host="{host}"}}',
            "start": "1",
            "end": "4102444800",
        },
        timeout=10,
    )
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_v2_writes_land_in_victoriametrics_in_the_specs_schema(vm: VictoriaServer) -> None:
    store = InfluxStore(
        vm.url,
        clock=FakeClock(T0),
        host="vm-web1",
        org="acme",
        bucket="sysmon",
        token="t0ken",
        interval_seconds=10.0,
        integer_fields=frozenset({"used_bytes"}),
    )
    store.open()
    try:
        assert store.ping() is True
        for k in range(3):
            store.write(
                snap(
                    T0 + 10 * k + 0.004,
                    {
                        ("cpu", ()): {"percent": 12.5 + k, "load_1": 0.25},
                        ("cpu", (("core", "0"),)): {"percent": 3.0},
                        ("memory", ()): {"used_bytes": 3421339648.0 + k},
                        **{
                            ("disk", (("mount", m),)): {"percent": float(i)}
                            for i, m in enumerate(MOUNTS)
                        },
                    },
                )
            )
        assert store.stats().last_write_error is None
    finally:
        store.close()

    stored = {
        (
            item["metric"]["__name__"],
            tuple(sorted((k, v) for k, v in item["metric"].items() if k != "__name__")),
        ): (item["values"], item["timestamps"])
        for item in export(vm, "vm-web1")
    }
    ms = [int(T0) * 1000 + 10_000 * k + 4 for k in range(3)]
    host = ("host", "vm-web1")
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[list[float], list[int]]] = {
        ("system_metrics_percent", (host, ("metric_type", "cpu"))): ([12.5, 13.5, 14.5], ms),
        ("system_metrics_load_1", (host, ("metric_type", "cpu"))): ([0.25] * 3, ms),
        ("system_metrics_percent", (("core", "0"), host, ("metric_type", "cpu"))): ([3.0] * 3, ms),
        ("system_metrics_used_bytes", (host, ("metric_type", "memory"))): (
            [3421339648, 3421339649, 3421339650],
            ms,
        ),
    }
    for i, mount in enumerate(MOUNTS):
        stored_mount = "/t\u29f5" if mount == "/t\\" else mount  # see label_text
        expected[
            ("system_metrics_percent", (host, ("metric_type", "disk"), ("mount", stored_mount)))
        ] = ([float(i)] * 3, ms)
    assert stored == expected
    assert vm.counter("vm_rows_inserted_total", type="influx") == 3 * (4 + len(MOUNTS))
