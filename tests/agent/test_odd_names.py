"""Names the OS hands over that are not UTF-8 (a mount point, an interface) cost no sample.

Linux gives Python such bytes as lone surrogates (``surrogateescape``). Unescaped, they
make every later encoder refuse the whole tick: the remote stores' line protocols and
the notifications. psutil is faked at the collector boundary; the rest is the real agent path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sysmon.agent.collection import Collection
from sysmon.clock import FakeClock
from sysmon.collectors.disk import DiskCollector
from sysmon.collectors.network import NetworkCollector
from sysmon.storage.base import RangeQuery
from sysmon.storage.config import RetentionConfig
from sysmon.storage.influx import encode_snapshots
from sysmon.storage.sqlite.store import SQLiteStore
from sysmon.storage.victoria import encode_snapshot
from tests.collectors.fakes import FakeSource, load_ticks

ODD_MOUNT = "/media/cl\udce9"  # b"/media/cl\xe9": a Latin-1 volume label
ODD_NIC = "wlan\udcff"


def odd_ticks() -> list[dict[str, Any]]:
    ticks = load_ticks()
    for state in ticks:
        state["disk_partitions"].append(
            {"device": "/dev/sdb1", "mountpoint": ODD_MOUNT, "fstype": "vfat", "opts": "rw"}
        )
        state["disk_usage"][ODD_MOUNT] = state["disk_usage"]["/data"]
        nics = state["net_io_counters"]
        nics[ODD_NIC] = nics.pop("wlan0")
    return ticks


def test_odd_names_are_escaped_once_and_every_store_takes_the_tick(tmp_path: Path) -> None:
    ticks = odd_ticks()
    source = FakeSource(ticks[0])
    clock = FakeClock(start=1000.0)
    collection = Collection(
        {
            "disk": DiskCollector(source, DiskCollector.Options()),
            "network": NetworkCollector(source, NetworkCollector.Options()),
        },
        clock,
        deadline_seconds=5.0,
    )
    snapshots = []
    try:
        for i, state in enumerate(ticks[:2]):
            source.set_state(state)
            clock.advance(1.0)
            snapshots.append(collection.tick(1001.0 + i))
    finally:
        collection.close()
    last = snapshots[-1]
    assert last.errors == {}
    values = {v for s in last.samples() for _, v in s.labels}
    assert "/media/cl\\xe9" in values and "wlan\\xff" in values
    assert all(v.encode("utf-8") for v in values)  # raises on a lone surrogate

    # Every encoder and store takes the tick whole.
    assert b"/media/cl" in encode_snapshot(last, "h1")  # each in its own escaping
    assert b"interface=wlan" in encode_snapshots([last], "h1").body
    store = SQLiteStore(tmp_path / "sysmon.db", RetentionConfig(), 1.0, clock)
    store.open()
    try:
        for snapshot in snapshots:
            store.write(snapshot)
        got = store.query(
            RangeQuery(
                metric="disk",
                start=1000.0,
                end=1003.0,
                labels=(("mount", "/media/cl\\xe9"),),
                resolution="raw",
            )
        )
    finally:
        store.close()
    assert [v for v in got.fields["percent"] if v is not None] != []
