"""Containers collector on a hand-written cgroup v2 tree (tests/fixtures/sys_fs_cgroup)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from sysmon.collectors import containers
from sysmon.collectors.containers import ContainersCollector, cgroup_name, walk_cgroups

from .fakes import FIXTURES, label_values, labelled, totals

TREE = FIXTURES / "sys_fs_cgroup" / "host"
NGINX = "system.slice/nginx.service"
DOCKER = (
    "system.slice/docker-3f5b2c1a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f.scope"
)
EXPECTED = {"init.scope", "nginx.service", "3f5b2c1a9e8d", "docker.service",
            "no-memory-controller.service", "9a8b7c6d5e4f", "user@1000.service",
            "session-2.scope", "0123456789ab", "/mygroup"}  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    shutil.copytree(TREE, root)
    return root


def make(root: Path | str, **options: Any) -> ContainersCollector:
    options.setdefault("services", True)
    opts = ContainersCollector.Options(cgroup_root=str(root), **options)
    return ContainersCollector(None, opts)


def bump(root: Path, rel: str, usage: int | None = None, io: str | None = None) -> None:
    if usage is not None:
        (root / rel / "cpu.stat").write_text(f"usage_usec {usage}\nuser_usec 1\nsystem_usec 1\n")
    if io is not None:
        (root / rel / "io.stat").write_text(io)


def test_selection_and_names() -> None:
    found, cut = walk_cgroups(str(TREE), max_depth=6, limit=100)
    assert not cut
    assert {c.name for c in found} == EXPECTED
    # a taken unit is not descended into; empty/unpopulated ones are skipped
    paths = {os.path.relpath(c.path, TREE) for c in found}
    assert not any(p.endswith(("/container", "app.slice")) for p in paths)
    assert "system.slice/stopped.service" not in paths


@pytest.mark.parametrize(
    ("dirname", "expected"),
    [
        ("docker-" + "a" * 64 + ".scope", ("a" * 12, "container")),
        ("libpod-" + "b" * 64 + ".scope", ("b" * 12, "container")),
        ("cri-containerd-" + "c" * 64 + ".scope", ("c" * 12, "container")),
        ("crio-" + "d" * 64 + ".scope", ("d" * 12, "container")),
        ("e" * 64, ("e" * 12, "container")),
        ("sshd.service", ("sshd.service", "unit")),
        ("libpod-conmon-" + "f" * 64 + ".scope", ("libpod-conmon-" + "f" * 64 + ".scope", "unit")),
        ("system.slice", ("/x/system.slice", "other")),
    ],
)
def test_cgroup_name(dirname: str, expected: tuple[str, str]) -> None:
    rel = "x/system.slice" if dirname == "system.slice" else dirname
    assert cgroup_name(dirname, rel) == expected


def test_default_reports_containers_only_even_nested_in_units(tree: Path) -> None:
    nested = tree / "user.slice/user-1000.slice/user@1000.service/app.slice"
    rootless = nested / ("libpod-" + "5" * 64 + ".scope")
    rootless.mkdir()
    (rootless / "cpu.stat").write_text("usage_usec 5\n")
    (rootless / "memory.current").write_text("4096\n")
    collector = ContainersCollector(None, ContainersCollector.Options(cgroup_root=str(tree)))
    out = collector.collect(1.0)
    assert label_values(out, "container") == {
        "3f5b2c1a9e8d",
        "9a8b7c6d5e4f",
        "0123456789ab",
        "555555555555",
    }
    assert totals(out)["count"] == 4.0


def test_gauges_first_tick_rates_second(tree: Path) -> None:
    collector = make(tree)
    first = collector.collect(100.0)
    # a cgroup with only CPU accounting has nothing but a rate: no sample on tick 1
    assert label_values(first, "container") == EXPECTED - {"no-memory-controller.service"}
    assert labelled(first, "container", "nginx.service") == {
        "memory_bytes": 52428800.0,
        "pids": 5.0,
    }
    assert totals(first)["count"] == 10.0

    bump(tree, NGINX, usage=120000000 + 500_000,
         io="8:0 rbytes=2097152 wbytes=4096 rios=65 wios=1 dbytes=0 dios=0\n"
            "259:0 rbytes=2097152 wbytes=12288 rios=32 wios=3 dbytes=0 dios=0\n")  # fmt: skip
    bump(tree, DOCKER, usage=300000000 + 3_000_000)
    second = collector.collect(102.0)
    nginx = labelled(second, "container", "nginx.service")
    assert nginx["cpu_percent"] == pytest.approx(25.0)  # 0.5 s of CPU in 2 s
    assert nginx["io_read_bytes_per_sec"] == pytest.approx(524288.0)  # +1 MiB in 2 s
    assert nginx["io_write_bytes_per_sec"] == pytest.approx(2048.0)
    docker = labelled(second, "container", "3f5b2c1a9e8d")
    assert docker["cpu_percent"] == pytest.approx(150.0)  # 1.5 cores
    assert docker["io_read_bytes_per_sec"] == 0.0
    assert labelled(second, "container", "init.scope")["cpu_percent"] == 0.0
    # memory/pids controllers not enabled there: CPU only
    assert labelled(second, "container", "no-memory-controller.service") == {"cpu_percent": 0.0}
    total = totals(second)
    assert total["cpu_percent"] == pytest.approx(175.0)
    assert total["memory_bytes"] == pytest.approx(
        sum(labelled(second, "container", n).get("memory_bytes", 0.0) for n in EXPECTED)
    )
    assert total["pids"] == 1 + 5 + 12 + 30 + 38 + 50 + 10 + 3 + 2


def test_counter_reset_gives_no_rate(tree: Path) -> None:
    collector = make(tree)
    collector.collect(1.0)
    bump(tree, NGINX, usage=10)  # service restarted: new cgroup, counter from 0
    out = collector.collect(2.0)
    assert "cpu_percent" not in labelled(out, "container", "nginx.service")


def test_new_container_within_refresh_and_vanished_one_at_once(tree: Path) -> None:
    collector = make(tree, refresh_seconds=10)
    collector.collect(100.0)
    new = tree / "system.slice" / ("docker-" + "7" * 64 + ".scope")
    new.mkdir()
    (new / "cpu.stat").write_text("usage_usec 5\n")
    (new / "cgroup.events").write_text("populated 1\n")
    assert totals(collector.collect(105.0))["count"] == 10.0
    assert totals(collector.collect(110.0))["count"] == 11.0  # walked again: found
    (new / "cpu.stat").write_text("usage_usec 100005\n")
    assert labelled(collector.collect(110.5), "container", "777777777777") == {
        "cpu_percent": pytest.approx(20.0)
    }

    shutil.rmtree(tree / NGINX)  # stopped: gone this tick, the tree re-walked next tick
    out = collector.collect(111.0)
    assert "nginx.service" not in label_values(out, "container")
    assert totals(out)["count"] == 10.0
    shutil.rmtree(new)
    assert totals(collector.collect(112.0))["count"] == 9.0  # re-walked, then read


def test_cap_and_depth(tree: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sysmon.collectors.containers"):
        collector = make(tree, max_cgroups=3)
        out = collector.collect(1.0)
        collector.collect(20.0)
    assert totals(out)["count"] == 3.0
    assert label_values(out, "container") == {"0123456789ab", "init.scope", "9a8b7c6d5e4f"}
    assert len([r for r in caplog.records if "more than 3 cgroups" in r.getMessage()]) == 1
    shallow = make(tree, max_depth=2).collect(1.0)
    assert "user@1000.service" not in label_values(shallow, "container")  # depth 3
    assert "nginx.service" in label_values(shallow, "container")


def test_not_cgroup_v2_is_empty_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "cpu").mkdir()  # a cgroup v1 tmpfs: controller directories, no cgroup2 files
    collector = make(tmp_path, refresh_seconds=0)
    with caplog.at_level(logging.INFO, logger="sysmon.collectors.containers"):
        for i in range(3):
            assert collector.collect(float(i)).samples == ()
    assert len([r for r in caplog.records if "not available" in r.getMessage()]) == 1


def test_absent_hierarchy_is_looked_for_again_only_every_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = make(tmp_path, refresh_seconds=10)
    looks: list[str] = []
    real_exists = containers.os.path.exists

    def exists(path: str) -> bool:
        looks.append(path)
        return real_exists(path)

    monkeypatch.setattr(containers.os.path, "exists", exists)
    for t in range(10):
        assert collector.collect(100.0 + t).samples == ()
    assert len(looks) == 1, "absent: one look per refresh period, not one per tick"
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    assert collector.collect(110.0).samples != (), "seen once the period is over"
    assert len(looks) == 2


def _cgroup2_root() -> Path | None:
    for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        if (root / "cgroup.controllers").exists():
            return root
    return None


@pytest.mark.live
def test_live_cgroup_with_a_sleeping_process() -> None:
    root = _cgroup2_root()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy on this host")
    child = root / f"sysmon-test-{os.getpid()}.scope"
    try:
        child.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup under {root}: {exc}")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        try:
            (child / "cgroup.procs").write_text(str(sleeper.pid))
        except OSError as exc:
            pytest.skip(f"cannot move a process into {child}: {exc}")
        collector = make(root)
        collector.collect(time.monotonic())
        time.sleep(0.1)
        out = collector.collect(time.monotonic())
        assert child.name in label_values(out, "container")
        values = labelled(out, "container", child.name)
        assert 0.0 <= values["cpu_percent"] < 50.0  # sleep uses ~no CPU
        if (child / "pids.current").exists():
            assert values["pids"] == 1.0
    finally:
        sleeper.kill()
        sleeper.wait()
        for _ in range(50):  # the cgroup can be removed once the process is reaped
            try:
                child.rmdir()
                break
            except OSError:
                time.sleep(0.02)


def test_recorded_hybrid_unified_tree_reports_cpu_only(tmp_path: Path) -> None:
    """Recorded on the development VM (cgroup v1 + an empty v2 tree at .../unified)."""
    root = tmp_path / "unified"
    shutil.copytree(FIXTURES / "sys_fs_cgroup" / "hybrid_unified", root)
    collector = make(root)
    first = collector.collect(1.0)
    assert totals(first) == {"count": 1.0}
    bump(root, "sysmon-rec.scope", usage=1_000)
    second = collector.collect(2.0)
    assert labelled(second, "container", "sysmon-rec.scope") == {"cpu_percent": 0.1}
