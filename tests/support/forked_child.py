"""A child for the supervisor's tests: ``python -m tests.support.forked_child DIR MODE``.

Writes what it was started with to ``DIR/<pid>.json``; ``MODE`` ``exit7`` exits with 7 at
once, ``wait`` runs until SIGTERM and exits 0. It records whether descriptor
``$FORK_TEST_FD`` (inheritable in its supervisor) is open in it. Its atexit handler writes
``DIR/<pid>.atexit``, and a non-daemon thread it starts must be waited for. In ``wait``
mode, ``DIR/<pid>.ready`` says its SIGTERM handler is in place."""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path


def main() -> int:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    record = {
        "argv": sys.argv,
        "name": __name__,
        "parent": os.environ.get("SYSMON_PARENT_PID"),
        "extra": os.environ.get("FORK_TEST"),
        "sigterm": str(signal.getsignal(signal.SIGTERM)),
        "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "held_fd_open": _is_open(os.environ.get("FORK_TEST_FD", "")),
    }
    (out / f"{os.getpid()}.json").write_text(json.dumps(record))
    atexit.register(lambda: (out / f"{os.getpid()}.atexit").write_text("ran"))
    if mode == "exit7":
        return 7
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    (out / f"{os.getpid()}.ready").write_text("handler set")

    def late_writer() -> None:  # non-daemon: the exit waits for it, as python would
        stop.wait()
        time.sleep(0.2)
        (out / f"{os.getpid()}.thread").write_text("done")

    threading.Thread(target=late_writer).start()
    while not stop.wait(0.02):
        pass
    return 0


def _is_open(fd: str) -> bool | None:
    if not fd.isdigit():
        return None
    try:
        os.fstat(int(fd))
    except OSError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
