"""One malloc arena for all the agent's threads: glibc's ``mallopt(M_ARENA_MAX, 1)``.

glibc gives each new thread that allocates an arena of its own (up to 8 per core), and
each arena keeps what was freed in it for later. The agent's threads (a lane per
collector, the store writer, the notifier, the live channel) wake once a tick, allocate
a little, mostly while holding the GIL, and sleep again: their three arenas held 1.4
MiB that one shared arena does not need (agent PSS 39.0 -> 38.1 MiB, ``bench/README.md``,
session 10). Contention on one arena lock is no cost for threads that take turns on
the GIL anyway. The server keeps glibc's default: its worker
threads read the store concurrently, in SQLite's C code, outside the GIL.

Called before the agent starts its threads. Not glibc (musl, macOS): nothing happens.
"""

from __future__ import annotations

M_ARENA_MAX = -8
"""``<malloc.h>``'s parameter number for the arena cap."""


def use_one_arena() -> bool:
    """Cap the process at one malloc arena; ``False`` where that cannot be done."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, 1))
