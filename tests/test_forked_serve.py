"""``sysmon.serve.SHARED``, what ``sysmon serve`` imports before it forks agent and server,
against the modules the two really load (each run here in its own interpreter: the
agent started and stopped, the server's app through its lifespan). A module both load
that ``serve`` did not is built twice, once per child; a module only one loads, if
preloaded, stays in the other as pages nobody uses."""

from __future__ import annotations

from pathlib import Path

from tests.support.process import python_json, service_env

ROOT = Path(__file__).resolve().parents[1]

SERVE = """
from sysmon import cli
args = cli.build_parser().parse_args(["serve"])
settings = cli._settings(args)
cli.configure_logging_for(settings)
cli._tls_options(args, settings)
cli._check_bind(settings.server.host, settings, False, warn=False)
from sysmon.channel import data_dir
from sysmon.supervisor import sysmon_argv
data_dir(settings.database.path), sysmon_argv("agent")
from sysmon.serve import preload_shared
preload_shared()
"""
"""What ``cmd_serve`` runs before it forks."""

AGENT = """
import time
from sysmon import cli
from sysmon.agent.service import Agent
settings = cli._settings(cli.build_parser().parse_args(["agent"]))
agent = Agent(settings, migrate_in_child=True)
agent.start()
deadline = time.monotonic() + 60
while agent.collection.ticks < 3 and time.monotonic() < deadline:  # a slow machine too
    time.sleep(0.1)
assert agent.collection.ticks >= 3, "the agent did not tick"
agent.stop()
"""

SERVER = """
import asyncio
from sysmon import cli
from sysmon.main import create_app
import uvicorn
settings = cli._settings(cli.build_parser().parse_args(["server"]))
app = create_app(settings, start_agent=False)
async def run() -> None:
    async with app.router.lifespan_context(app):
        await asyncio.sleep(1.5)
asyncio.run(run())
"""


LOADED = """
import json, sys
print(json.dumps(sorted(m for m, v in sys.modules.items() if v is not None)))
"""


def loaded(code: str, env: dict[str, str]) -> set[str]:
    """The modules ``code`` leaves loaded (not those blocked by a ``None`` entry)."""
    script = code + LOADED
    return set(python_json(script, env=env, timeout=120))


def test_serve_preloads_what_both_children_load_and_nothing_else(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    env = service_env(folder / "sysmon.db")
    agent = loaded(AGENT, env)  # first: it creates the database the server opens
    server, serve = loaded(SERVER, env), loaded(SERVE, env)
    both = agent & server
    assert len(both) > 400 and "sysmon.storage.sqlite.store" in both, "the check checks"
    assert sorted(both - serve) == [], "load these in serve before the fork (SHARED)"
    # What serve loads beyond that: its checks and the forking itself, small, named here.
    # auth.mode none (the default) never hashes or signs: PyJWT and argon2 stay unloaded.
    assert not {m for m in server if m.partition(".")[0] in ("jwt", "argon2")}
    assert not {m for m in server if m.startswith("pydantic.v1")}, "sysmon.api keeps it out"
    # Its bind check (sysmon.security.hosts) needs no FastAPI, which the agent never loads.
    forking = ["gc", "sysmon.forked", "sysmon.preflight", "sysmon.security.hosts", "sysmon.serve"]
    assert sorted(serve - both) == [*forking, "sysmon.supervisor"]
