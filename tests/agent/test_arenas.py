"""``use_one_arena``: glibc's own count of its malloc arenas (``malloc_stats``), in a fresh
interpreter whose threads allocate, with and without the cap."""

from __future__ import annotations

import platform
import re
import subprocess
import sys

import pytest

from tests.support.process import ROOT

THREADS = """
import ctypes, sys, threading
from sysmon.agent.arenas import use_one_arena
capped = use_one_arena() if sys.argv[1] == "cap" else None
together = threading.Barrier(4)
def work():
    kept = [bytes(2000) for _ in range(2000)]  # past pymalloc's 512 bytes: glibc's malloc
    together.wait()  # all alive at once: no thread inherits the arena of one that ended
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(capped, flush=True)
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def arenas(mode: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", THREADS, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip(), len(re.findall(r"^Arena \d+:", done.stderr, re.MULTILINE))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_threads_share_one_arena_once_capped() -> None:
    capped, count = arenas("default")
    assert capped == "None" and count > 1, "glibc gives threads arenas of their own"
    assert arenas("cap") == ("True", 1)
