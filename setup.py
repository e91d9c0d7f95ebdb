"""Build hooks (metadata lives in pyproject.toml): the dashboard's vendor files from
``node_modules`` go into the wheel and the sdist, so an installed sysmon serves its charts
and API docs with no npm at run time. ``npm ci`` runs first when they are missing."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent


def _sources() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("_vendor", HERE / "sysmon/web/vendor.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.SOURCES)


def _copy_vendor(target: Path) -> None:
    """Copy each vendor folder into ``target/<name>``: from ``node_modules`` (after
    ``npm ci`` if needed), or from an sdist's own ``sysmon/web/vendor``."""
    sources = _sources()
    packaged = HERE / "sysmon" / "web" / "vendor"
    node_modules = HERE / "node_modules"
    have_packaged = all((packaged / name).is_dir() for name in sources)
    have_npm = all((node_modules / src).is_dir() for src in sources.values())
    if not have_packaged and not have_npm:
        if not (HERE / "package-lock.json").exists() or shutil.which("npm") is None:
            raise SystemExit("sysmon build: dashboard vendor files missing; run `npm ci`")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    for name, src in sources.items():
        origin = packaged / name if (packaged / name).is_dir() else node_modules / src
        dest = target / name
        if dest.resolve() == origin.resolve():
            continue
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(origin, dest, ignore=shutil.ignore_patterns("*.map", "*.md"))


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install serves the checkout's node_modules
        _copy_vendor(Path(self.build_lib) / "sysmon" / "web" / "vendor")


class SDist(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        _copy_vendor(Path(base_dir) / "sysmon" / "web" / "vendor")


setup(cmdclass={"build_py": BuildPy, "sdist": SDist})
