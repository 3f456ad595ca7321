"""The README's run command: `router demo` prints a base URL, an API key and an admin key that work, ships
policies and guardrails, keeps its database in the user's data folder, and `--fresh` starts over."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

import pg

from servers import ROUTER, free_port, gateway_engine, router_cli

EXPORT = re.compile(r"^export (ROUTER_API_KEY|ROUTER_ADMIN_KEY)=(\S+)$", re.MULTILINE)


class Demo:
    def __init__(self, env: dict[str, str], *flags: str) -> None:
        self.port, self.mock_port = free_port(), free_port()
        cmd = [*ROUTER, "demo", "--port", str(self.port), "--mock-port", str(self.mock_port), "--workers", "1"]
        self.proc = subprocess.Popen([*cmd, *flags], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)  # fmt: skip
        self.printed = ""
        deadline = time.monotonic() + 60
        while "/v1/manage/" not in self.printed and time.monotonic() < deadline and self.proc.poll() is None:
            self.printed += self.proc.stdout.readline()
        self.base = re.search(r"router gateway listening on (http://\S+)/v1", self.printed).group(1)
        self.keys = dict(EXPORT.findall(self.printed))
        for _ in range(100):  # the banner comes before the workers listen
            try:
                httpx.get(f"{self.base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)

    def curl_lines(self) -> list[str]:
        return [line for line in self.printed.splitlines() if line.startswith("curl ")]

    def stop(self, sig: int = signal.SIGINT) -> str:
        os.killpg(self.proc.pid, sig)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # no process left behind for the next tests to trip on
            self.proc.communicate()
            raise
        return self.printed + out


# The tests about the demo's own SQLite file (where it lives, what --fresh deletes).
DEMO_FILE = pytest.mark.one_engine("about the demo's SQLite file in the data folder")


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    """The demo as a user runs it: no ROUTER_DB, no config, a data folder of its own. In the PostgreSQL pass,
    ROUTER_DB names an empty PostgreSQL database, as a user trying the demo on their server would."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    for name in ("ROUTER_DB", "ROUTER_MOCK_URL", "ROUTER_CONFIG", "ROUTER_ADMIN_KEY"):
        env.pop(name, None)
    if gateway_engine() == "postgresql":
        env["ROUTER_DB"] = pg.server().fresh(migrated=False)
    return env


@pytest.fixture
def demo(demo_env: dict[str, str]) -> Iterator[Demo]:
    running = Demo(demo_env)
    yield running
    if running.proc.poll() is None:
        running.stop(signal.SIGTERM)


def run_curl(line: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A banner line as a user pastes it into a shell with the two exports done."""
    return subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=30, check=True)


def test_demo_prints_two_exports_and_a_gateway_on_the_default_form(demo: Demo) -> None:
    assert set(demo.keys) == {"ROUTER_API_KEY", "ROUTER_ADMIN_KEY"}
    assert len(demo.keys["ROUTER_ADMIN_KEY"]) >= 32
    assert demo.keys["ROUTER_API_KEY"].startswith("rk-")
    client = openai.OpenAI(base_url=f"{demo.base}/v1", api_key=demo.keys["ROUTER_API_KEY"], max_retries=3)
    reply = client.chat.completions.create(model="mock/gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content


def test_every_banner_curl_line_runs_as_printed(demo: Demo, demo_env: dict[str, str]) -> None:
    env = {**demo_env, **demo.keys}
    lines = demo.curl_lines()
    assert any("policy/demo-fallback" in line for line in lines)
    assert any("/v1/manage/" in line for line in lines)
    for line in lines:
        out = run_curl(line + " -w '\\n%{http_code}'", env).stdout
        assert out.rstrip().endswith("200"), (line, out)
        if "/v1/manage/" in line:
            assert '"approval_configured"' in out  # the admin key works on the management API
        if '"echo":true' in line:
            # The guardrails masked the email and the AWS key before the mock echoed the prompt back.
            assert "[EMAIL_1]" in out and "[AWS_ACCESS_KEY_1]" in out, out
            assert "jane.doe@example.com" not in out


def test_the_demo_policies_route_over_the_mock_models(demo: Demo) -> None:
    client = openai.OpenAI(base_url=f"{demo.base}/v1", api_key=demo.keys["ROUTER_API_KEY"], max_retries=0)
    listed = {m.id for m in client.models.list()}
    assert {"policy/demo-fallback", "policy/demo-balance", "policy/demo-fastest"} <= listed
    attempts = set()
    for _ in range(4):  # the flaky first target fails every other request: the fallback answers anyway
        raw = client.chat.completions.with_raw_response.create(
            model="policy/demo-fallback", messages=[{"role": "user", "content": "Hi"}]
        )
        attempts.add(raw.headers["x-router-attempts"])
        assert raw.parse().choices[0].message.content
    assert "2" in attempts
    for policy in ("policy/demo-balance", "policy/demo-fastest"):
        raw = client.chat.completions.with_raw_response.create(
            model=policy, messages=[{"role": "user", "content": "Hi"}]
        )
        assert raw.headers["x-router-model"].startswith(("mock/", "anthropic/"))


@DEMO_FILE
def test_the_database_lives_in_the_data_folder_and_the_cli_finds_it_anywhere(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    running = Demo(demo_env)
    try:
        database = Path(demo_env["XDG_DATA_HOME"]) / "router" / "demo.db"
        assert f"router: created a new database at {database}" in running.printed
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        listed = subprocess.run([*ROUTER, "keys", "list", "--json"], env=demo_env, cwd=elsewhere,
                                capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
        assert '"name":"demo"' in listed.stdout
        assert "created a new database" not in listed.stderr
        assert not (elsewhere / ".router").exists()
    finally:
        out = running.stop()
    # Ctrl-C stops every worker gracefully, the mock included.
    assert "refused to gracefully stop" not in out, out
    assert "Traceback" not in out, out
    # A second start reuses the database (no "created" line) and mints another demo key in it.
    again = Demo(demo_env)
    try:
        assert "created a new database" not in again.printed
    finally:
        again.stop()
    names = router_cli(demo_env, "keys", "list", "--json").stdout
    assert names.count('"name":"demo"') == 2


@DEMO_FILE
def test_demo_fresh_deletes_the_demo_state(demo_env: dict[str, str]) -> None:
    first = Demo(demo_env)
    first.stop()
    router_cli(demo_env, "models", "preset", "eu-only", "--replace")
    data = Path(demo_env["XDG_DATA_HOME"]) / "router"
    assert (data / "demo.db").exists()
    fresh = Demo(demo_env, "--fresh")
    try:
        assert f"deleted the demo database {data / 'demo.db'}" in fresh.printed
        assert "created a new database" in fresh.printed
        models = router_cli(demo_env, "models", "list", "--json").stdout
        assert "approval not configured" in models
        assert router_cli(demo_env, "keys", "list", "--json").stdout.count('"name":"demo"') == 1
    finally:
        fresh.stop()


def test_a_key_reaches_the_whole_catalog_again_after_approval_is_switched_off(demo: Demo, demo_env) -> None:
    env = {**demo_env, **demo.keys}
    router_cli(env, "models", "preset", "eu-only", "--replace")
    chat = next(line for line in demo.curl_lines() if '"model":"mock/gpt-4o"' in line and "echo" not in line)
    assert run_curl(chat + " -w '\\n%{http_code}'", env).stdout.rstrip().endswith("403")
    off = router_cli(env, "models", "approval", "off", "--json").stdout
    assert '"approval_configured":false' in off
    assert run_curl(chat + " -w '\\n%{http_code}'", env).stdout.rstrip().endswith("200")
    audit = router_cli(env, "audit", "--json").stdout
    assert "models.approval" in audit


@DEMO_FILE
def test_demo_fresh_never_deletes_a_real_configs_database(demo_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text((Path(__file__).parents[2] / "python" / "router" / "demo.yaml").read_text())
    database = Path(demo_env["XDG_DATA_HOME"]) / "router" / "router.db"
    router_cli({**demo_env, "ROUTER_CONFIG": str(config)}, "keys", "create", "--name", "real")
    assert database.exists()
    refused = subprocess.run([*ROUTER, "demo", "--fresh", "--config", str(config), "--port", str(free_port())],
                             env=demo_env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and "belongs to your config" in refused.stderr
    assert database.exists()


@pytest.mark.one_engine("starts its own PostgreSQL database")
def test_demo_on_postgresql_migrates_an_empty_database_and_fresh_never_empties_it(demo_env, tmp_path: Path) -> None:
    env = {**demo_env, "ROUTER_DB": pg.server().fresh(migrated=False)}
    running = Demo(env)
    try:
        assert "/v1/manage/" in running.printed and running.keys, running.printed
        assert not (Path(env["XDG_DATA_HOME"]) / "router" / "demo.db").exists()  # no SQLite file beside it
    finally:
        running.stop()
    refused = subprocess.run([*ROUTER, "demo", "--fresh", "--port", str(free_port())],
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--fresh only deletes a SQLite demo database" in refused.stderr
    assert router_cli(env, "keys", "list", "--json").stdout.count('"name":"demo"') == 1  # nothing deleted
