"""``PsutilSource``'s Linux fast paths give psutil's numbers, and its fd cache is sound.

The ``/proc`` parsers are checked against psutil itself on the same canned files
(``tests/fixtures/proc``, pointed to through ``psutil.PROCFS_PATH``), so "identical to
psutil" is asserted, not assumed. The process listing runs on a fake procfs in
``tmp_path`` and, once, on the real ``/proc`` with a child process that exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sysmon.collectors import source as src
from sysmon.collectors.source import PsutilSource, parse_meminfo, parse_proc_stat

PROC = Path(__file__).resolve().parent.parent / "fixtures" / "proc"
CLK = float(os.sysconf("SC_CLK_TCK"))

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


@pytest.fixture
def psutil_on_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "PROCFS_PATH", str(PROC))


@linux_only
@pytest.mark.usefixtures("psutil_on_fixtures")
def test_proc_stat_matches_psutil() -> None:
    reading = parse_proc_stat((PROC / "stat").read_bytes(), CLK, percpu=True)
    assert reading.total == src.cpu_times_from(psutil.cpu_times())
    assert reading.cores == [src.cpu_times_from(t) for t in psutil.cpu_times(percpu=True)]
    assert reading.stats == src.cpu_stats_from(psutil.cpu_stats())
    assert reading.total.user == 277707 / CLK
    assert parse_proc_stat((PROC / "stat").read_bytes(), CLK, percpu=False).cores is None


@linux_only
@pytest.mark.usefixtures("psutil_on_fixtures")
def test_meminfo_matches_psutil() -> None:
    reading = parse_meminfo((PROC / "meminfo").read_bytes(), (PROC / "vmstat").read_bytes())
    assert reading is not None
    assert reading.virtual == src.virtual_memory_from(psutil.virtual_memory())
    assert reading.swap == src.swap_memory_from(psutil.swap_memory())
    assert reading.swap.sin == 1234 * 4096 and reading.swap.percent == 25.0


@linux_only
@pytest.mark.usefixtures("psutil_on_fixtures")
def test_diskstats_matches_psutil() -> None:
    parsed = src.parse_diskstats((PROC / "diskstats").read_bytes())
    expected = psutil.disk_io_counters(perdisk=True, nowrap=False)
    assert parsed == {name: src.disk_io_from(v) for name, v in expected.items()}
    assert set(parsed) == {"loop0", "vda", "vda1", "nvme0n1", "sda", "sda1"}
    assert parsed["vda"].read_bytes == 5598946 * 512 and parsed["vda"].busy_time == 32868
    assert parsed["sda1"] == src.DiskIO(4, 12, 8 * 512, 16 * 512, 0)  # a 2.6 partition line


@linux_only
@pytest.mark.usefixtures("psutil_on_fixtures")
def test_net_dev_matches_psutil() -> None:
    parsed = src.parse_net_dev((PROC / "net" / "dev").read_bytes())
    expected = psutil.net_io_counters(pernic=True, nowrap=False)
    assert parsed == {name: src.net_io_from(v) for name, v in expected.items()}
    assert parsed["eth0"] == src.NetIO(598311, 389078617, 5135, 9036, 3, 5, 4, 6)
    assert parsed["wlp0s20f3"].bytes_recv == 2**64 - 1


@pytest.mark.parametrize(
    ("parse", "data"),
    [
        (src.parse_diskstats, b"   8 0 sda 1 2 3\n"),
        (src.parse_net_dev, b"head\nhead\n  eth0: 1 2 3\n"),
        (src.parse_net_dev, b"head\nhead\nno colon here 1 2\n"),
    ],
)
def test_unusual_counter_files_are_refused(parse: object, data: bytes) -> None:
    with pytest.raises(ValueError):
        parse(data)  # type: ignore[operator]


@linux_only
def test_live_counters_match_psutil() -> None:
    source = PsutilSource()
    disks = source.disk_io_counters()
    nics = source.net_io_counters()
    expected_disks = psutil.disk_io_counters(perdisk=True, nowrap=False)
    expected_nics = psutil.net_io_counters(pernic=True, nowrap=False)
    assert set(disks) == set(expected_disks) and set(nics) == set(expected_nics)
    for name, io in disks.items():  # read a moment apart: counters only grow
        assert 0 <= expected_disks[name].read_count - io.read_count < 10_000
    for name, nic in nics.items():
        assert 0 <= expected_nics[name].packets_recv - nic.packets_recv < 100_000
    assert source.memory_total() == psutil.virtual_memory().total
    source.close()


@pytest.mark.parametrize(
    "drop",
    [b"MemAvailable:", b"Buffers:", b"SwapTotal:"],
)
def test_meminfo_defers_to_psutil_when_a_field_is_missing(drop: bytes) -> None:
    meminfo = b"\n".join(
        line for line in (PROC / "meminfo").read_bytes().splitlines() if not line.startswith(drop)
    )
    assert parse_meminfo(meminfo, (PROC / "vmstat").read_bytes()) is None


def test_meminfo_defers_to_psutil_when_available_is_zero_or_vmstat_lacks_swap() -> None:
    meminfo = (PROC / "meminfo").read_bytes()
    zero = b"\n".join(
        b"MemAvailable: 0 kB" if line.startswith(b"MemAvailable:") else line
        for line in meminfo.splitlines()
    )
    assert parse_meminfo(zero, (PROC / "vmstat").read_bytes()) is None
    assert parse_meminfo(meminfo, b"nr_free_pages 1\n") is None


def test_proc_stat_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="/proc/stat"):
        parse_proc_stat(b"nothing here\n", CLK, percpu=False)


# --- the process listing and its descriptor cache


def _stat_line(pid: int, name: str, utime: int, rss_pages: int, threads: int = 1) -> str:
    # proc(5) fields 1..24: pid (comm) state ppid pgrp session tty tpgid flags minflt
    # cminflt majflt cmajflt utime stime cutime cstime priority nice num_threads
    # itrealvalue starttime vsize rss
    return (
        f"{pid} ({name}) S 1 1 1 0 -1 0 0 0 0 0 {utime} 5 0 0 20 0 {threads} 0 "
        f"100 1000 {rss_pages} 0 0\n"
    )


def _fake_procfs(root: Path, procs: dict[int, str]) -> None:
    (root / "self").mkdir(exist_ok=True)
    (root / "self" / "stat").write_text(_stat_line(1, "self", 0, 0))
    for pid, line in procs.items():
        (root / str(pid)).mkdir(exist_ok=True)
        (root / str(pid) / "stat").write_text(line)


@linux_only
def test_listing_rereads_cached_descriptors(tmp_path: Path) -> None:
    _fake_procfs(tmp_path, {10: _stat_line(10, "a b) c", 100, 3, 4), 20: _stat_line(20, "x", 0, 1)})
    source = PsutilSource(procfs=str(tmp_path))
    page = os.sysconf("SC_PAGE_SIZE")
    first = {p.pid: p for p in source.processes()}
    assert first[10].name == "a b) c" and first[10].status == "sleeping"
    assert first[10].cpu_time == 105 / CLK
    assert first[10].rss == 3 * page and first[10].num_threads == 4
    assert first[10].create_time == source.boot_time() + 100 / CLK
    assert len(source._stat_fds) == 2

    # Same descriptors, new content: pread at offset 0 sees the update.
    fds = dict(source._stat_fds)
    (tmp_path / "10" / "stat").write_text(_stat_line(10, "a b) c", 250, 3, 4))
    second = {p.pid: p for p in source.processes()}
    assert second[10].cpu_time == 255 / CLK
    assert source._stat_fds == fds
    source.close()
    assert source._stat_fds == {}


@linux_only
def test_vanished_process_closes_its_descriptor(tmp_path: Path) -> None:
    _fake_procfs(tmp_path, {10: _stat_line(10, "a", 1, 1), 20: _stat_line(20, "b", 1, 1)})
    source = PsutilSource(procfs=str(tmp_path))
    list(source.processes())
    gone_fd = source._stat_fds[20]
    (tmp_path / "20" / "stat").unlink()
    (tmp_path / "20").rmdir()
    assert [p.pid for p in source.processes()] == [10]
    assert set(source._stat_fds) == {10}
    with pytest.raises(OSError):
        os.fstat(gone_fd)


@linux_only
def test_failed_reread_reopens_the_path(tmp_path: Path) -> None:
    """A cached descriptor that no longer reads (process exited, pid reused) is replaced."""
    _fake_procfs(tmp_path, {10: _stat_line(10, "old", 1, 1)})
    source = PsutilSource(procfs=str(tmp_path))
    list(source.processes())
    os.close(source._stat_fds[10])  # reads on it now fail, like ESRCH after exit
    (tmp_path / "10" / "stat").write_text(_stat_line(10, "new", 7, 1))
    assert [(p.pid, p.name) for p in source.processes()] == [(10, "new")]
    assert len(source._stat_fds) == 1
    source.close()


@linux_only
def test_descriptor_budget_caps_the_cache(tmp_path: Path) -> None:
    _fake_procfs(tmp_path, {pid: _stat_line(pid, f"p{pid}", pid, 1) for pid in (10, 20, 30)})
    source = PsutilSource(procfs=str(tmp_path))
    source._fd_budget = 1
    for _ in range(2):
        assert sorted(p.pid for p in source.processes()) == [10, 20, 30]
        assert len(source._stat_fds) == 1
    source.close()


@linux_only
def test_real_proc_child_exit_drops_it() -> None:
    source = PsutilSource()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)  # fmt: skip
    try:
        listed = {p.pid: p for p in source.processes()}
        assert child.pid in listed
        assert child.pid in source._stat_fds
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
    assert child.pid not in {p.pid for p in source.processes()}
    assert child.pid not in source._stat_fds
    source.close()


# --- reading only some processes, and reusing the listing


@linux_only
def test_read_processes_reads_only_the_asked_pids(tmp_path: Path) -> None:
    _fake_procfs(tmp_path, {pid: _stat_line(pid, f"p{pid}", pid, 1) for pid in (10, 20, 30)})
    source = PsutilSource(procfs=str(tmp_path))
    assert source.process_pids() == {10, 20, 30}
    assert source._stat_fds == {}  # listing opens nothing
    got = {p.pid: p for p in source.read_processes([20, 30, 99])}  # 99 does not exist
    assert set(got) == {20, 30} and set(source._stat_fds) == {20, 30}
    # unchanged bytes: the same object back, without parsing; changed bytes: parsed
    (tmp_path / "30" / "stat").write_text(_stat_line(30, "p30", 31, 1))
    again = {p.pid: p for p in source.read_processes([20, 30])}
    assert again[20] is got[20]
    assert again[30] is not got[30] and again[30].cpu_time == 36 / CLK
    # a pid no longer listed loses its descriptor at the next listing
    fd = source._stat_fds[20]
    (tmp_path / "20" / "stat").unlink()
    (tmp_path / "20").rmdir()
    assert source.process_pids() == {10, 30}
    assert set(source._stat_fds) == {30} and 20 not in source._stat_memo
    with pytest.raises(OSError):
        os.fstat(fd)
    source.close()
    assert source._stat_memo == {}


@linux_only
def test_unchanged_bytes_skip_parsing_without_a_cached_descriptor(tmp_path: Path) -> None:
    _fake_procfs(tmp_path, {10: _stat_line(10, "a", 1, 1), 20: _stat_line(20, "b", 1, 1)})
    source = PsutilSource(procfs=str(tmp_path))
    source._fd_budget = 0  # every read opens and closes
    source.process_pids()
    first = {p.pid: p for p in source.read_processes([10, 20])}
    second = {p.pid: p for p in source.read_processes([10, 20])}
    assert source._stat_fds == {}
    assert second[10] is first[10] and second[20] is first[20]
    # a new process under the same pid (other start time) is parsed, never memoized
    (tmp_path / "10" / "stat").write_text(
        _stat_line(10, "a", 1, 1).replace(" 100 1000 ", " 300 1000 ")
    )
    (third,) = source.read_processes([10])
    assert third is not first[10] and third.create_time == first[10].create_time + 200 / CLK


def _loadavg(root: Path, threads: int, last_pid: int) -> None:
    (root / "loadavg").write_text(f"0.10 0.20 0.30 2/{threads} {last_pid}\n")


@linux_only
def test_listing_is_reused_while_no_task_was_created_or_reaped(tmp_path: Path) -> None:
    _fake_procfs(tmp_path, {10: _stat_line(10, "a", 1, 1)})
    _loadavg(tmp_path, 100, 5000)
    source = PsutilSource(procfs=str(tmp_path))
    assert source.process_pids() == {10}
    _fake_procfs(tmp_path, {20: _stat_line(20, "b", 1, 1)})  # appears, token unchanged
    assert source.process_pids() == {10}
    (tmp_path / "loadavg").write_text("0.90 0.20 0.30 7/100 5000\n")  # only the load moved
    assert source.process_pids() == {10}
    _loadavg(tmp_path, 101, 5001)  # a task was created
    assert source.process_pids() == {10, 20}
    pids = source.process_pids()
    pids.add(1)  # callers get their own copy
    assert source.process_pids() == {10, 20}


@linux_only
def test_listing_is_retaken_after_max_age(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_procfs(tmp_path, {10: _stat_line(10, "a", 1, 1)})
    _loadavg(tmp_path, 100, 5000)
    source = PsutilSource(procfs=str(tmp_path))
    clock = [100.0]
    monkeypatch.setattr(src.time, "monotonic", lambda: clock[0])
    assert source.process_pids() == {10}
    # A change the token does not show (another pid namespace): seen after the max age,
    # and from then on the token is not trusted.
    _fake_procfs(tmp_path, {20: _stat_line(20, "b", 1, 1)})
    clock[0] += src._PIDS_MAX_AGE - 0.5
    assert source.process_pids() == {10}
    clock[0] += 1.0
    assert source.process_pids() == {10, 20}
    assert source._pids_gate is False
    _fake_procfs(tmp_path, {30: _stat_line(30, "c", 1, 1)})
    assert source.process_pids() == {10, 20, 30}


@linux_only
@pytest.mark.parametrize("loadavg", ["0.00 0.00 0.00 0/0 0\n", "garbage\n", None])
def test_no_usable_loadavg_means_listing_every_time(tmp_path: Path, loadavg: str | None) -> None:
    _fake_procfs(tmp_path, {10: _stat_line(10, "a", 1, 1)})
    if loadavg is not None:  # gVisor prints zeros; a fake /proc may have none
        (tmp_path / "loadavg").write_text(loadavg)
    source = PsutilSource(procfs=str(tmp_path))
    assert source.process_pids() == {10}
    _fake_procfs(tmp_path, {20: _stat_line(20, "b", 1, 1)})
    assert source.process_pids() == {10, 20}


def test_psutil_fallback_reads_only_the_asked_pids() -> None:
    source = PsutilSource()
    source._linux_fast = False
    me = os.getpid()
    assert me in source.process_pids()
    missing = max(source.process_pids()) + 100_000
    got = list(source.read_processes([me, missing]))
    assert [p.pid for p in got] == [me]
    assert got[0].create_time == pytest.approx(psutil.Process(me).create_time())
    assert got[0].num_threads is not None and got[0].num_threads >= 1


@linux_only
def test_real_proc_listing_sees_children_come_and_go_at_once() -> None:
    source = PsutilSource()
    for _ in range(5):
        source.process_pids()
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE)  # fmt: skip
        try:
            assert child.pid in source.process_pids()
            (info,) = source.read_processes([child.pid])
            assert info.pid == child.pid
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait()
        assert child.pid not in source.process_pids()
        assert list(source.read_processes([child.pid])) == []
    source.close()


# --- process details: the /proc fast path against psutil's own answers


def _psutil_details(pid: int) -> tuple[tuple[str, ...], str]:
    proc = psutil.Process(pid)
    return tuple(proc.cmdline()), proc.username()


@linux_only
def test_details_fast_path_matches_psutil_on_live_processes(tmp_path: Path) -> None:
    script = "import sys, time; sys.stdin.read()"
    odd = [
        [sys.executable, "-c", script, "arg with spaces", "", "ünï\u00efcode", "--pw=x"],
        ["bash", "-c", f'exec -a "rewritten as one string" {sys.executable} -c "{script}"'],
    ]
    children = [subprocess.Popen(argv, stdin=subprocess.PIPE) for argv in odd]
    source = PsutilSource()
    try:
        time.sleep(0.3)  # let the shell exec
        for pid in [os.getpid(), 1, *(c.pid for c in children)]:
            create = psutil.Process(pid).create_time()
            try:
                expected = _psutil_details(pid)
            except psutil.AccessDenied:
                continue
            got = source.process_details(pid, create, cmdline=True)
            assert (got.cmdline, got.username) == expected, pid
            assert source.process_details(pid, create, cmdline=False).cmdline is None
    finally:
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
            child.wait()
    with pytest.raises(psutil.NoSuchProcess):
        source.process_details(children[0].pid, 0.0, cmdline=True)  # gone
    source.close()


@linux_only
def test_details_of_a_zombie_raise_as_psutil_does() -> None:
    child = subprocess.Popen(["true"])
    source = PsutilSource()
    try:
        deadline = time.monotonic() + 5
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
        create = psutil.Process(child.pid).create_time()
        with pytest.raises(psutil.ZombieProcess):
            psutil.Process(child.pid).cmdline()
        with pytest.raises(psutil.ZombieProcess):
            source.process_details(child.pid, create, cmdline=True)
    finally:
        child.wait()
        source.close()


@linux_only
def test_details_refuse_a_reused_pid() -> None:
    source = PsutilSource()
    me = os.getpid()
    with pytest.raises(psutil.NoSuchProcess):
        source.process_details(me, psutil.Process(me).create_time() - 5.0, cmdline=True)
    source.close()


@pytest.mark.parametrize(
    ("raw", "args"),
    [
        (b"python3\x00-c\x00print(1)\x00", ("python3", "-c", "print(1)")),
        (b"nginx: worker process\x00", ("nginx:", "worker", "process")),  # rewritten argv
        (b"a b c", ("a", "b", "c")),  # no NUL at all
        (b"one\x00\x00two\x00", ("one", "", "two")),  # an empty argument is kept
        (b"", ()),  # zombie or kernel thread
    ],
)
def test_parse_cmdline_splits_like_psutil(raw: bytes, args: tuple[str, ...]) -> None:
    assert src.parse_cmdline(raw) == args


def test_parse_real_uid_takes_the_first_uid_column() -> None:
    status = b"Name:\tx\nUmask:\t0022\nState:\tS\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n"
    assert src.parse_real_uid(status) == 1000
    with pytest.raises(ValueError):
        src.parse_real_uid(b"Name:\tx\n")


@linux_only
def test_user_names_are_cached_per_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    calls: list[int] = []
    real = pwd.getpwuid

    def counting(uid: int) -> pwd.struct_passwd:
        calls.append(uid)
        return real(uid)

    monkeypatch.setattr(pwd, "getpwuid", counting)
    source = PsutilSource()
    me = os.getpid()
    create = psutil.Process(me).create_time()
    for _ in range(3):
        source.process_details(me, create, cmdline=False)
    assert calls == [os.getuid()]
    assert source._user_name(2**31 - 7) == str(2**31 - 7), "no such user: the number"
    source.close()
