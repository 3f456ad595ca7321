"""The representative e2e files again with every gateway on PostgreSQL (ROUTER_TEST_ENGINE=postgresql): chat,
governance, spend limits and routing policies. The whole suite runs so with
`ROUTER_TEST_ENGINE=postgresql pytest tests/e2e`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ["test_chat.py", "test_governance.py", "test_spend.py", "test_policies.py"]


@pytest.mark.timeout(900)
@pytest.mark.skipif(os.environ.get("ROUTER_TEST_ENGINE") == "postgresql", reason="this run is on PostgreSQL already")
def test_representative_e2e_files_pass_on_postgresql() -> None:
    env = {**os.environ, "ROUTER_TEST_ENGINE": "postgresql"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *(str(ROOT / "tests" / "e2e" / f) for f in FILES)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1]
