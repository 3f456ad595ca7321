"""`pip install` without extras must serve: no module of the package imports a dev-only dependency."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"

# Imports every module of `router` with the dev-only packages made unimportable.
PROBE = """
import importlib, pkgutil, sys
blocked = set(sys.argv[1:])
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (dev-only)")
sys.meta_path.insert(0, Block())
import router
for module in pkgutil.walk_packages(router.__path__, "router."):
    if not module.name.endswith(".__main__"):  # those run the command line
        importlib.import_module(module.name)
print("imported")
"""


def _dev_only() -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    runtime = {_name(d) for d in project["dependencies"]}
    return {_name(d) for d in project["optional-dependencies"]["dev"]} - runtime


def _name(requirement: str) -> str:
    name = requirement.split(";")[0].split("[")[0]
    for stop in "<>=!~ ":
        name = name.split(stop)[0]
    return name.strip().lower().replace("-", "_")


def test_no_module_imports_a_dev_only_package() -> None:
    blocked = _dev_only()
    assert {"httpx", "openai", "anthropic", "pytest"} <= blocked
    done = subprocess.run([sys.executable, "-c", PROBE, *sorted(blocked)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"
