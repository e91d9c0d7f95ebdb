"""The package installs anywhere: ``python -m build`` (sdist, then a wheel built from that
sdist, as pipx and pip do for a release) gives a wheel with no top-level ``app`` package
whose dashboard serves its chart library and API-doc assets with no ``node_modules``."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sysmon.web.vendor import SOURCES
from tests.support.process import ROOT, free_port, wait_healthy

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield out


def test_wheel_has_no_app_package_and_carries_vendor_files(built: Path) -> None:
    (wheel,) = built.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"sysmon", "sysmon-0.1.0.dist-info"}
    for name in SOURCES:
        assert any(n.startswith(f"sysmon/web/vendor/{name}/") for n in names), name
    assert "sysmon/web/vendor/uplot/uPlot.iife.min.js" in names
    assert "sysmon/web/templates/index.html" in names
    (sdist,) = built.glob("*.tar.gz")
    assert sdist.stat().st_size > 0


def test_installed_wheel_serves_charts(built: Path, tmp_path: Path) -> None:
    (wheel,) = built.glob("*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=120,
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    where = subprocess.run(
        [sys.executable, "-c", "import sysmon; print(sysmon.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(target)), where.stdout
    no_app = subprocess.run(
        [sys.executable, "-c", "import app"], cwd=tmp_path, env=env, capture_output=True
    )
    assert no_app.returncode != 0  # the wheel installs no package named ``app``

    port = free_port()
    config = tmp_path / "sysmon.yaml"
    config.write_text(
        f"database:\n  path: {tmp_path / 'data' / 'metrics.db'}\n"
        "collection:\n  interval_seconds: 1\n"
    )
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sysmon", "--config", str(config), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        page = httpx.get(f"{base}/", timeout=5)
        assert page.status_code == 200 and "uPlot.iife.min.js" in page.text
        for path in (
            "/static/vendor/uplot/uPlot.iife.min.js",
            "/static/vendor/swagger-ui/swagger-ui-bundle.js",
            "/static/vendor/redoc/redoc.standalone.js",
        ):
            r = httpx.get(base + path, timeout=5)
            assert r.status_code == 200 and len(r.content) > 10_000, path
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert "not installed (run `npm ci`)" not in (tmp_path / "serve.log").read_text()
