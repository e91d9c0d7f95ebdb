"""``KernelFiles``: kept descriptors read afresh, bounded, and reopened after a failure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sysmon.collectors.hostfs import KernelFiles, read_bytes


def test_a_kept_descriptor_reads_the_current_content(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one\n")
    files = KernelFiles()
    assert files.read(str(path)) == b"one\n"
    path.write_bytes(b"two, longer\n")  # rewritten in place, as the kernel regenerates
    assert files.read(str(path)) == b"two, longer\n"
    assert list(files._fds) == [str(path)], "one descriptor, kept"
    files.close()
    assert files._fds == {}


def test_reads_past_the_chunk_size_to_the_end_or_just_the_head(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(bytes(range(256)) * 1000)
    files = KernelFiles()
    assert files.read(str(path), size=4096) == path.read_bytes()
    assert files.head(str(path), 10) == bytes(range(10))
    files.close()


def test_a_failing_descriptor_is_replaced_and_a_vanished_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    files = KernelFiles()
    files.read(str(path))
    os.close(files._fds[str(path)])  # the device behind it went away
    assert files.read(str(path)) == b"x", "opened again by path"
    files.close()
    with pytest.raises(FileNotFoundError):
        files.read(str(tmp_path / "missing"))


def test_at_most_limit_descriptors_are_kept(tmp_path: Path) -> None:
    files = KernelFiles(limit=2)
    for i in range(4):
        (tmp_path / str(i)).write_bytes(str(i).encode())
        assert files.read(str(tmp_path / str(i))) == str(i).encode()
    assert len(files._fds) == 2
    files.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_proc_files_read_through_a_kept_descriptor_match_a_fresh_read() -> None:
    files = KernelFiles()
    for name in ("/proc/self/stat", "/proc/meminfo", "/proc/net/dev"):
        kept = files.read(name)
        again = files.read(name)
        assert again.split(b"\n")[0].split()[:2] == read_bytes(name).split(b"\n")[0].split()[:2]
        assert len(again) > 0 and len(kept) > 0
    files.close()
