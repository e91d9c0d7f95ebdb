"""``sysmon serve`` once its checks passed: fork the agent and the server from here, then
hand them to a bare supervisor (``sysmon.forked``, which says why).

``SHARED`` is what this process imports first, beyond what the checks loaded: the rest
of what both children load, so that it is imported once and its pages are shared."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sysmon.forked import Entry, Prepared, exec_supervisor, fork_children

SHARED = (
    "sysmon.storage.factory",
    "sysmon.storage.sqlite.store",
    "sysmon.channel",
    "sysmon.fanout",
    "sysmon.sentry",
    "sysmon.serialize",
)
"""Beyond what ``serve``'s checks loaded (pydantic, SQLAlchemy, the settings, the
collectors, the alert store): the rest of what both children import. Modules only one
child imports are left to it (the agent's are nearly all the server's too): preloaded,
the other child would keep pages nobody uses. ``tests/test_forked_serve.py`` checks this
list against the modules the two children really load."""


def preload_shared() -> None:
    for module in SHARED:
        importlib.import_module(module)


def fork_then_supervise(
    plan: Mapping[str, Any], entry_for: Callable[[Sequence[str]], Entry]
) -> int:
    """Fork the agent (unless another holds the data directory: the supervisor waits for
    it) and the server, each running ``entry_for(its sysmon arguments)``, then become the
    bare supervisor. ``plan``: the children's command lines, the data directory and
    what the supervisor logs: the JSON ``sysmon.supervisor.main`` reads."""
    from sysmon.agent.lock import is_held
    from sysmon.supervisor import PARENT_ENV, serve_forever

    preload_shared()
    agent, server, lock_dir = plan["agent"], plan["server"], plan["lock_dir"]
    children = {}
    if not is_held(Path(lock_dir)):
        children["agent"] = Prepared(agent, entry_for(agent[3:]))
    children["server"] = Prepared(server, entry_for(server[3:]))
    pids = fork_children(children, PARENT_ENV)
    exec_supervisor(plan, pids)
    return serve_forever(agent, server, lock_dir, pids)  # only if the exec failed
