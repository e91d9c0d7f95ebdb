"""``GET /metrics``: the Prometheus exposition of the latest tick, the service's own state
and the HTTP latency histogram, parsed back with ``prometheus_client.parser`` and checked
against the tick (``/api/v1/metrics/current``) and ``/api/v1/health``, and linted by
``promtool check metrics``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from sysmon.api.exposition import FAMILIES, TOTAL, host_families, service_families
from sysmon.clock import FakeClock
from sysmon.security.accounts import Accounts
from tests.api.conftest import START, tick
from tests.security.auth_support import accounts, auth_stack
from tests.support.stack import Stack

Series = tuple[str, tuple[tuple[str, str], ...]]


def parse(text: str) -> dict[Series, float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    out: dict[Series, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in out, f"duplicate series {key}"
            out[key] = sample.value
    return out


def promtool_check(text: str) -> None:
    """The exposition parses and lints clean: no output, exit 0. (node_exporter's
    camelCase /proc/meminfo names fail this lint, so those four are ``sysmon_*`` here.)"""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian: apt-get install -y prometheus)")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


class _Families:
    """A collector over fixed families (to format ``host_families``' output)."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterator[Any]:
        yield from self.families


def exposition(metrics: dict[str, Any]) -> str:
    registry = CollectorRegistry()

    def describe(metric: str, field: str) -> tuple[str, str]:
        return {"io_some_avg10": ("PSI 10 s average", "%"), "temp_celsius": ("Temp", "°C")}.get(
            field, ("", "")
        )

    registry.register(_Families(host_families(metrics, describe)))
    return generate_latest(registry).decode()


# A tick in the shape of /api/v1/metrics/current's "metrics" (docs/CONTRACTS.md).
TICK: dict[str, Any] = {
    "cpu": {
        "total": {
            "percent": 12.5,
            "user_percent": 8.0,
            "system_percent": 4.5,
            "iowait_percent": 0.25,
            "idle_percent": 87.5,
            "load_1": 0.3,
            "load_5": 0.2,
            "load_15": 0.1,
            "ctx_switches_per_sec": 1500.0,
            "interrupts_per_sec": 700.0,
            "freq_mhz": 2400.0,
        },  # no steal_percent: absent fields stay absent
        "core": {"0": {"percent": 20.0}, "1": {"percent": 5.0}},
    },
    "memory": {
        "total": {
            "total_bytes": 8_000_000_000,
            "available_bytes": 6_000_000_000,
            "used_bytes": 1_500_000_000,
            "percent": 25.0,
            "buffers_bytes": 100_000_000,
            "cached_bytes": 400_000_000,
            "swap_total_bytes": 2_000_000_000,
            "swap_used_bytes": 0,
            "swap_percent": 0.0,
            "swap_in_bytes_per_sec": 4096.0,
            "swap_out_bytes_per_sec": 0.0,
        }
    },
    "disk": {
        "total": {"read_bytes_per_sec": 99.0, "total_bytes": 1, "percent": 50.0},
        "device": {
            "sda": {
                "read_bytes_per_sec": 1024.0,
                "write_bytes_per_sec": 2048.0,
                "read_ops_per_sec": 3.0,
                "write_ops_per_sec": 4.0,
                "busy_percent": 1.5,
            }
        },
        "mount": {
            "/": {"total_bytes": 100, "used_bytes": 40, "free_bytes": 55, "percent": 42.1},
            "/boot efi": {"total_bytes": 10, "used_bytes": 1, "free_bytes": 9, "percent": 10.0},
        },
    },
    "network": {
        "total": {"bytes_recv_per_sec": 999.0},
        "interface": {
            "eth0": {
                "bytes_recv_per_sec": 10.0,
                "bytes_sent_per_sec": 20.0,
                "packets_recv_per_sec": 1.0,
                "packets_sent_per_sec": 2.0,
                "errin_per_sec": 0.0,
                "errout_per_sec": 0.5,
                "dropin_per_sec": 0.25,
                "dropout_per_sec": 0.0,
            }
        },
    },
    "processes": {"total": {"count": 210, "threads": 900}},
    "files": {"total": {"allocated": 2544, "max": 100_000, "percent": 2.544}},
    "inodes": {
        "total": {"total": 1000},  # the sum over mounts: left to PromQL
        "mount": {"/": {"total": 1000, "used": 250, "free": 750, "percent": 25.0}},
    },
    "sockets": {
        "total": {"count": 300, "tcp_established": 5, "tcp_time_wait": 2, "tcp_orphan": 0},
        "protocol": {"tcp": {"count": 12}, "unix": {"count": 200}},
        "state": {"listen": {"tcp_sockets": 4}, "established": {"tcp_sockets": 5}},
    },
    "widgets": {"total": {"count": 3}},
    "pressure": {"total": {"io_some_avg10": 2.5, "io_some_stall_per_sec": 1.0}},
    "sensors": {"sensor": {"coretemp/0": {"temp_celsius": 51.0}}},
}


def test_each_tick_value_is_one_series_named_scaled_and_labelled_as_documented() -> None:
    def s(name: str, **labels: str) -> Series:
        return (name, tuple(sorted(labels.items())))

    expected = {
        s("node_load1"): 0.3,
        s("node_load5"): 0.2,
        s("node_load15"): 0.1,
        s("sysmon_cpu_usage_ratio"): 0.125,
        s("sysmon_cpu_mode_ratio", mode="user"): 0.08,
        s("sysmon_cpu_mode_ratio", mode="system"): 0.045,
        s("sysmon_cpu_mode_ratio", mode="iowait"): 0.0025,
        s("sysmon_cpu_mode_ratio", mode="idle"): 0.875,
        s("sysmon_cpu_core_usage_ratio", cpu="0"): 0.2,
        s("sysmon_cpu_core_usage_ratio", cpu="1"): 0.05,
        s("sysmon_context_switches_per_second"): 1500.0,
        s("sysmon_interrupts_per_second"): 700.0,
        s("sysmon_cpu_frequency_hertz"): 2.4e9,
        s("sysmon_memory_total_bytes"): 8e9,
        s("sysmon_memory_available_bytes"): 6e9,
        s("node_memory_Buffers_bytes"): 1e8,
        s("sysmon_memory_swap_total_bytes"): 2e9,
        s("sysmon_memory_cached_bytes"): 4e8,
        s("sysmon_memory_used_bytes"): 1.5e9,
        s("sysmon_memory_usage_ratio"): 0.25,
        s("sysmon_memory_swap_used_bytes"): 0.0,
        s("sysmon_memory_swap_usage_ratio"): 0.0,
        s("sysmon_memory_swap_in_bytes_per_second"): 4096.0,
        s("sysmon_memory_swap_out_bytes_per_second"): 0.0,
        s("sysmon_disk_read_bytes_per_second", device="sda"): 1024.0,
        s("sysmon_disk_written_bytes_per_second", device="sda"): 2048.0,
        s("sysmon_disk_reads_completed_per_second", device="sda"): 3.0,
        s("sysmon_disk_writes_completed_per_second", device="sda"): 4.0,
        s("sysmon_disk_io_busy_ratio", device="sda"): 0.015,
        s("node_filesystem_size_bytes", mountpoint="/"): 100.0,
        s("node_filesystem_avail_bytes", mountpoint="/"): 55.0,
        s("sysmon_filesystem_used_bytes", mountpoint="/"): 40.0,
        s("sysmon_filesystem_usage_ratio", mountpoint="/"): 0.421,
        s("node_filesystem_size_bytes", mountpoint="/boot efi"): 10.0,
        s("node_filesystem_avail_bytes", mountpoint="/boot efi"): 9.0,
        s("sysmon_filesystem_used_bytes", mountpoint="/boot efi"): 1.0,
        s("sysmon_filesystem_usage_ratio", mountpoint="/boot efi"): 0.1,
        s("sysmon_network_receive_bytes_per_second", interface="eth0"): 10.0,
        s("sysmon_network_transmit_bytes_per_second", interface="eth0"): 20.0,
        s("sysmon_network_receive_packets_per_second", interface="eth0"): 1.0,
        s("sysmon_network_transmit_packets_per_second", interface="eth0"): 2.0,
        s("sysmon_network_receive_errs_per_second", interface="eth0"): 0.0,
        s("sysmon_network_transmit_errs_per_second", interface="eth0"): 0.5,
        s("sysmon_network_receive_drop_per_second", interface="eth0"): 0.25,
        s("sysmon_network_transmit_drop_per_second", interface="eth0"): 0.0,
        s("node_processes_pids"): 210.0,
        s("node_processes_threads"): 900.0,
        s("node_filefd_allocated"): 2544.0,
        s("node_filefd_maximum"): 100_000.0,
        s("sysmon_files_usage_ratio"): 0.02544,
        s("node_filesystem_files", mountpoint="/"): 1000.0,
        s("node_filesystem_files_free", mountpoint="/"): 750.0,
        s("sysmon_filesystem_files_used", mountpoint="/"): 250.0,
        s("sysmon_filesystem_files_usage_ratio", mountpoint="/"): 0.25,
        # Fields with no mapping row: sysmon_<metric>_<field>, percentages as ratios.
        s("sysmon_pressure_io_some_avg10_ratio"): 0.025,
        s("sysmon_pressure_io_some_stall_per_second"): 1.0,
        s("sysmon_sensors_temp_celsius", sensor="coretemp/0"): 51.0,
        s("sysmon_widgets_count_value"): 3.0,  # a gauge must not end like a histogram
        s("node_sockstat_sockets_used"): 300.0,
        s("sysmon_tcp_established_connections"): 5.0,
        s("node_sockstat_TCP_tw"): 2.0,
        s("node_sockstat_TCP_orphan"): 0.0,
        s("sysmon_sockets_in_use", protocol="tcp"): 12.0,
        s("sysmon_sockets_in_use", protocol="unix"): 200.0,
        s("node_tcp_connection_states", state="listen"): 4.0,
        s("node_tcp_connection_states", state="established"): 5.0,
    }
    got = parse(exposition(TICK))
    assert got.keys() == expected.keys()  # disk, network, inode totals are left to PromQL
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    text = exposition(TICK)
    assert (
        "# HELP sysmon_pressure_io_some_avg10_ratio PSI 10 s average (pressure.io_some_avg10)"
        in (text)
    )
    promtool_check(text)


def test_a_family_without_values_this_tick_is_left_out() -> None:
    got = parse(exposition({"cpu": {"total": {"load_1": 1.0}}, "memory": {"total": {}}}))
    assert got == {("node_load1", ()): 1.0}


def test_forward_queues_are_exported_per_remote_and_absent_without_remotes() -> None:
    remote = {
        "backend": "victoriametrics",
        "queued_ticks": 12,
        "queued_bytes": 40960,
        "oldest_queued_age_seconds": 11.5,
        "dropped_ticks": 3,
        "failing_ticks": 12,
        "last_sent_at": None,  # never sent: left out, not 0
        "sent_ticks": 100,
    }
    registry = CollectorRegistry()
    registry.register(_Families(list(service_families({"forward": {"vm": remote}}))))
    text = generate_latest(registry).decode()
    got = {name: value for (name, labels), value in parse(text).items() if "forward" in name}
    assert got == {
        "sysmon_forward_queued_ticks": 12.0,
        "sysmon_forward_queued_bytes": 40960.0,
        "sysmon_forward_oldest_queued_age_seconds": 11.5,
        "sysmon_forward_failing_ticks": 12.0,
        "sysmon_forward_sent_ticks_total": 100.0,
        "sysmon_forward_dropped_ticks_total": 3.0,
    }
    assert all(labels == (("remote", "vm"),) for (name, labels) in parse(text) if "forward" in name)
    promtool_check(text)
    assert not any("forward" in f.name for f in service_families({"forward": {}}))


# --- over HTTP: the real agent and server -------------------------------------------


@pytest.fixture
def client(server: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def _expected_from_current(metrics: dict[str, Any]) -> dict[Series, float]:
    """What the mapping table says each mapped value of a real tick becomes."""
    out: dict[Series, float] = {}
    for family in FAMILIES:
        series = (metrics.get(family.metric) or {}).get(family.series) or {}
        groups = {"": series} if family.series == TOTAL else series
        for label_value, values in groups.items():
            for field, extra in family.fields:
                if field not in values:
                    continue
                labels = dict(zip(family.label_names, [label_value, extra], strict=False))
                if family.series == TOTAL:
                    labels = {family.extra_label: extra} if family.extra_label else {}
                key = (family.name, tuple(sorted(labels.items())))
                out[key] = values[field] * family.scale
    return out


def test_metrics_serve_the_latest_tick_values(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 2)  # rates and CPU shares need a second tick
    served = parse(client.get("/metrics").text)
    current = client.get("/api/v1/metrics/current").json()
    expected = _expected_from_current(current["metrics"])
    for name in ("node_load1", "sysmon_memory_total_bytes", "node_processes_pids"):
        assert (name, ()) in expected, f"{name} missing from a real tick"
    assert ("node_filesystem_size_bytes", (("mountpoint", "/"),)) in expected
    for key, value in expected.items():
        assert served[key] == pytest.approx(value, rel=1e-12), key
    assert served[("sysmon_last_tick_timestamp_seconds", ())] == START + 1
    assert served[("sysmon_agent_connected", ())] == 1.0
    assert not any(name.startswith("sysmon_process") for name, _ in served), "no per-pid series"
    assert not any(name.startswith("sysmon_forward") for name, _ in served), "no remote: no queue"


def test_service_metrics_match_health(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 3)
    served = parse(client.get("/metrics").text)
    health = client.get("/api/v1/health").json()
    assert served[("sysmon_agent_ticks_total", ())] == 3.0
    assert served[("sysmon_agent_overruns_total", ())] == health["agent"]["overruns"]
    assert served[("sysmon_database_size_bytes", ())] == health["database"]["size_bytes"]
    assert served[("sysmon_database_pending_writes", ())] == 0.0
    assert served[("sysmon_database_dropped_ticks_total", ())] == 0.0
    assert health["collectors"], "the agent reports its collectors"
    for name, report in health["collectors"].items():
        key = (("collector", name),)
        assert served[("sysmon_collector_duration_seconds", key)] == pytest.approx(
            report["last_duration_ms"] / 1000, rel=1e-12
        )
        assert served[("sysmon_collector_missed_samples_total", key)] == report["missed_total"]
        assert served[("sysmon_collector_last_tick_failed", key)] == (
            1.0 if name in health["collector_errors"] else 0.0
        )
    # tick_lateness_ms comes from the agent's schedule, which these tests drive by hand.
    lateness = health["agent"]["tick_lateness_ms"]
    for stat in ("p50", "p99", "max"):
        key2 = ("sysmon_agent_tick_lateness_seconds", (("stat", stat),))
        if lateness.get(stat) is None:
            assert key2 not in served, "an unknown value is left out, not reported as 0"
        else:
            assert served[key2] == pytest.approx(lateness[stat] / 1000)


def test_before_the_first_tick_only_what_is_known_is_served(client: httpx.Client) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    served = parse(r.text)
    assert ("node_load1", ()) not in served
    assert ("sysmon_last_tick_timestamp_seconds", ()) not in served
    assert served[("sysmon_build_info", (("version", __import__("sysmon").__version__),))] == 1.0


def test_request_latency_is_labelled_by_route_template_and_method(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 2)
    window = {"start": str(START), "end": str(START + 60)}
    for metric in ("cpu", "memory", "cpu"):  # the second cpu is a range cache hit
        assert client.get(f"/api/v1/metrics/{metric}", params=window).status_code == 200
    assert client.get("/api/v1/metrics/current").status_code == 200
    assert client.get("/no/such/page-123").status_code == 404
    assert client.request("PROPFIND", "/api/v1/health").status_code == 405
    assert client.get("/static/app.js").status_code == 200
    served = parse(client.get("/metrics").text)
    counts = {
        (dict(labels)["method"], dict(labels)["route"]): value
        for (name, labels), value in served.items()
        if name == "sysmon_http_request_duration_seconds_count"
    }
    assert counts == {
        ("GET", "/api/v1/metrics/{metric}"): 3.0,
        ("GET", "/api/v1/metrics/current"): 1.0,
        ("GET", "<unmatched>"): 1.0,
        ("other", "/api/v1/health"): 1.0,
        ("GET", "/static/*"): 1.0,
    }  # the scrape itself is observed once its answer is sent: the next scrape counts it
    again = parse(client.get("/metrics").text)
    assert (
        again[
            (
                "sysmon_http_request_duration_seconds_count",
                (("method", "GET"), ("route", "/metrics")),
            )
        ]
        == 1.0
    )
    bucket = ("sysmon_http_request_duration_seconds_bucket",)
    assert not any(
        "/api/v1/metrics/cpu" in dict(labels).get("route", "")
        for (name, labels) in again
        if (name,) == bucket
    ), "raw paths never become labels"


def test_exposition_passes_promtool_and_negotiates_openmetrics(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 2)
    client.get("/api/v1/health")
    promtool_check(client.get("/metrics").text)
    prometheus_accept = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    r = client.get("/metrics", headers={"accept": prometheus_accept})
    assert r.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert r.text.endswith("# EOF\n")


# --- authentication -----------------------------------------------------------------


def _api_key(acc: Accounts) -> str:
    _, secret = acc.create_key("prometheus", "viewer", by=None, source=None)
    return str(secret)


def test_with_jwt_auth_a_scrape_needs_credentials(tmp_path: Path) -> None:
    with auth_stack(tmp_path) as s:
        s.running.tick(2)
        refused = s.client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json() == {"detail": "not authenticated"}
        assert s.client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        with accounts(s.settings) as acc:
            key = _api_key(acc)
        for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
            r = s.client.get("/metrics", headers=headers)
            assert r.status_code == 200, r.text
            assert ("node_load1", ()) in parse(r.text)
        by_token = s.client.get("/metrics", headers=s.bearer("victor"))
        assert by_token.status_code == 200
        # The refused scrapes were timed too (the middleware sits outside authentication).
        counts = parse(by_token.text)
        assert (
            counts[
                (
                    "sysmon_http_request_duration_seconds_count",
                    (("method", "GET"), ("route", "/metrics")),
                )
            ]
            == 4.0
        )
