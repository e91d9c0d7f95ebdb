"""``sysmon serve``'s hand-over, in a process of its own (a fork is only taken from a
process with one thread, which pytest's is not once other tests ran):
``python -m tests.support.fork_supervisor DIR MODE [handover-sigterm]``.

Forks ``tests.support.forked_child DIR MODE`` as an entry (``sysmon.forked``), then
supervises it, adopted, on the main thread until SIGTERM, as the supervisor ``sysmon
serve`` execs into does. ``handover-sigterm`` sends itself SIGTERM while the signals are
still blocked for the hand-over, and the supervisor is started only after that. At exit
it writes ``DIR/supervisor.json``: the forked pids and the child's exit codes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from sysmon.forked import SIGNALS, Prepared, fork_children
from sysmon.supervisor import PARENT_ENV, ChildSpec, Supervisor, serve_forever
from tests.support import forked_child


def main() -> int:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    argv = [sys.executable, "-m", "tests.support.forked_child", str(out), mode]
    pids = fork_children({"child": Prepared(argv, forked_child.main)}, PARENT_ENV)
    if sys.argv[3:] == ["handover-sigterm"]:
        ready = out / f"{pids['child']}.ready"  # else SIGTERM's default action stops it
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # pending: blocked since the fork
        lock_dir = out / "data"
        lock_dir.mkdir()
        code = serve_forever(["/bin/sleep", "60"], argv, str(lock_dir), {"server": pids["child"]})
        (out / "supervisor.json").write_text(json.dumps({"pids": pids, "code": code}))
        return code
    held = os.open(out / "held", os.O_CREAT | os.O_WRONLY)  # a restart must not inherit it
    os.set_inheritable(held, True)
    os.environ["FORK_TEST_FD"] = str(held)
    supervisor = Supervisor([ChildSpec("child", argv)], poll_seconds=0.02, adopted=pids)
    signal.signal(signal.SIGTERM, lambda *_: supervisor.request_stop())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    supervisor.run()
    supervisor.stop(timeout=10)
    history = supervisor._children[0].history
    (out / "supervisor.json").write_text(json.dumps({"pids": pids, "history": history}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
