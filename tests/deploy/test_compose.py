"""The container files: Dockerfile, docker-compose-level2.yml, docker-compose-level3.yml
and the Prometheus/Alertmanager configuration they mount.

No Docker engine runs here, so nothing is built or started. What is checked: the
compose client's own validation (``docker compose config -q`` or ``docker-compose``,
skipped with the reason when neither is installed), and by parsing: every local file a
service mounts exists, images are pinned by tag, only nginx listens beyond loopback,
secrets come from variables (never literals), the Dockerfile's user, health check and
command; Prometheus, its rules and Alertmanager's file pass promtool/amtool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.process import ROOT

FILES = ("docker-compose-level2.yml", "docker-compose-level3.yml")
PROMETHEUS = ROOT / "deploy" / "prometheus"
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
_SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY\b|WEBHOOK", re.I)
_URL_PASSWORD = re.compile(r"://[^/@\s]*:([^@\s]+)@")


def compose(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return data


def services(name: str) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose(name)["services"]
    return result


def compose_command() -> list[str] | None:
    """The compose client: the v2 plugin (``docker compose``), else a ``docker-compose``
    binary (Debian's is 1.29, the one packaged here: it validates the compose file
    format 3 these files use; they avoid v2-only keys such as a top-level ``name``)."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    binary = shutil.which("docker-compose")
    if binary:
        probe = subprocess.run([binary, "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [binary]
    return None


def required_variables(name: str) -> set[str]:
    return set(_VAR.findall((ROOT / name).read_text()))


@pytest.mark.parametrize("name", FILES)
def test_the_compose_client_accepts_the_file(name: str, tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip(
            "no Docker Compose client here (`docker compose` plugin or `docker-compose`; "
            "Debian: apt-get install docker-compose)"
        )
    env = {var: f"/tmp/{var.lower()}" for var in required_variables(name)}
    done = subprocess.run(
        [*command, "-f", str(ROOT / name), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path), **env},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", FILES)
def test_every_local_file_a_service_mounts_exists(name: str) -> None:
    local = []
    for svc in services(name).values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                local.append(source)
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
        build = svc.get("build")
        if build is not None:
            assert (ROOT / str(build) / "Dockerfile").is_file()
    assert "./deploy/nginx/sysmon.conf" in local
    assert "./deploy/grafana/provisioning" in local


@pytest.mark.parametrize("name", FILES)
def test_images_are_pinned_by_tag(name: str) -> None:
    for service, svc in services(name).items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and "/" not in tag, f"{service}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{service}: {image} is not pinned"


@pytest.mark.parametrize("name", FILES)
def test_only_nginx_listens_beyond_the_loopback(name: str) -> None:
    published = {}
    for service, svc in services(name).items():
        for port in svc.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), (service, port)
            published[service] = port
        if svc.get("network_mode") == "host":
            # In the host's network a container's listeners are the host's: only nginx
            # (public on purpose) and the agent (which listens on nothing) may be there.
            assert service in ("nginx", "agent"), service
    assert "nginx" not in published
    assert published["sysmon"] == "127.0.0.1:8000:8000"
    assert published["grafana"] == "127.0.0.1:3000:3000"


@pytest.mark.parametrize("name", FILES)
def test_secrets_come_from_variables_and_each_is_documented(name: str) -> None:
    text = (ROOT / name).read_text()
    for service, svc in services(name).items():
        env = svc.get("environment", {})
        assert isinstance(env, dict), f"{service}: use a mapping for environment"
        for key, value in env.items():
            value = str(value)
            if _SECRET_KEY.search(key):
                assert _VAR.fullmatch(value), f"{service}: {key} is a literal, not ${{VAR}}"
            password = _URL_PASSWORD.search(value)
            if password:
                assert _VAR.fullmatch(password.group(1)), f"{service}: {key} holds a password"
        command = " ".join(map(str, svc.get("command", [])))
        if "requirepass" in command:
            assert re.search(r"--requirepass \$\{REDIS_PASSWORD", command)
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    required = {m.group(1) for m in re.finditer(r"\$\{([A-Z0-9_]+):\?", text)}
    assert required, "no required variables?"
    documented = required if name.endswith("level2.yml") else required_variables(FILES[0])
    undocumented = {v for v in required if v not in header and v not in documented}
    assert undocumented == set()
    if name.endswith("level2.yml"):
        assert {v for v in required if v not in header} == set()


def test_level3_has_level2_and_the_observability_stack() -> None:
    two, three = services(FILES[0]), services(FILES[1])
    assert set(two) <= set(three)
    assert {"prometheus", "alertmanager", "node-exporter", "loki", "promtail", "worker"} <= set(
        three
    )
    assert three["promtail"]["network_mode"] == "service:loki"  # 127.0.0.1:3100 is Loki
    assert "./deploy/promtail.yaml:/etc/promtail/sysmon.yaml:ro" in three["promtail"]["volumes"]
    assert three["worker"]["command"][:4] == ["celery", "-A", "sysmon.tasks", "worker"]
    # Agent (host network: the published loopback port) and worker (the compose network)
    # use the same Redis database for the queue.
    agent_url = three["agent"]["environment"]["SYSMON_TASKS__BROKER_URL"]
    worker_url = three["worker"]["environment"]["SYSMON_TASKS__BROKER_URL"]
    assert agent_url.rsplit("/", 1)[1] == worker_url.rsplit("/", 1)[1]
    assert "SYSMON_TASKS__BROKER_URL" not in two["agent"]["environment"]  # in-process at L2


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def test_the_dockerfile_builds_in_a_stage_and_runs_unprivileged_with_a_health_check() -> None:
    build, final = dockerfile_stages()
    assert build[0] == ("FROM", "python:3.11-slim AS build")
    build_runs = " ".join(args for ins, args in build if ins == "RUN")
    assert "npm ci" in build_runs and "pip wheel" in build_runs
    assert final[0] == ("FROM", "python:3.11-slim")
    final_args = dict(final)  # the last of each instruction
    assert "--from=build /wheels /wheels" in [a for i, a in final if i == "COPY"]
    assert "npm" not in " ".join(a for i, a in final if i == "RUN")  # no Node.js at run time
    # The pinned versions `make` installs (constraints.txt), not whatever is newest.
    assert "constraints.txt /wheels/constraints.txt" in [a for i, a in final if i == "COPY"]
    assert "pip install -c /wheels/constraints.txt " in " ".join(a for i, a in final if i == "RUN")
    user = final_args["USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert [i for i, _ in final].index("USER") > max(
        n for n, (i, _) in enumerate(final) if i == "RUN"
    )  # nothing runs as root after the switch
    health = final_args["HEALTHCHECK"]
    assert "http://127.0.0.1:8000/api/v1/health" in health
    assert final_args["CMD"] == '["sysmon", "serve", "--host", "0.0.0.0", "--port", "8000"]'
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "node_modules", ".env", "*.key"} <= set(ignored)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_prometheus_configuration_and_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = str(shutil.which("promtool"))
    key = tmp_path / "sysmon.key"
    key.write_text("sysmon_dummy")
    rules = PROMETHEUS / "rules.yml"
    done = _run([promtool, "check", "rules", str(rules)])
    assert done.returncode == 0 and "SUCCESS: 6 rules found" in done.stdout, done.stdout
    for name in ("prometheus.yml", "prometheus-level3.yml"):
        text = (PROMETHEUS / name).read_text()
        text = text.replace("/etc/prometheus/sysmon.key", str(key))
        text = text.replace("/etc/prometheus/rules.yml", str(rules))
        config = tmp_path / name
        config.write_text(text)
        done = _run([promtool, "check", "config", str(config)])
        assert done.returncode == 0, done.stdout + done.stderr
    level3 = yaml.safe_load((PROMETHEUS / "prometheus-level3.yml").read_text())
    jobs = {j["job_name"]: j for j in level3["scrape_configs"]}
    assert jobs["sysmon"]["static_configs"][0]["targets"] == ["sysmon:8000"]
    assert jobs["node"]["static_configs"][0]["targets"] == ["node-exporter:9100"]
    assert level3["remote_write"][0]["url"] == "http://victoriametrics:8428/api/v1/write"


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
def test_alertmanager_configuration_passes_amtool() -> None:
    done = _run([str(shutil.which("amtool")), "check-config", str(PROMETHEUS / "alertmanager.yml")])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", FILES)
def test_the_server_believes_forwarded_headers_from_the_network_gateway(name: str) -> None:
    """nginx runs in the host's network and reaches the server through the published
    port, so requests arrive from the compose network's gateway: only with that address
    in ``server.forwarded_allow_ips`` do the client addresses (logs, rate limits) come
    from nginx's X-Forwarded-For instead of all being the gateway."""
    import json

    from sysmon.config import ServerConfig

    gateway = compose(name)["networks"]["default"]["ipam"]["config"][0]["gateway"]
    raw = services(name)["sysmon"]["environment"]["SYSMON_SERVER__FORWARDED_ALLOW_IPS"]
    trusted = ServerConfig(forwarded_allow_ips=json.loads(raw)).forwarded_allow_ips
    assert trusted == [gateway]
    assert services(name)["nginx"]["network_mode"] == "host"
