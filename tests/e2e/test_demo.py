"""The README's run command: `router demo` prints a base URL and a key that work with the openai SDK."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import openai

from servers import ROUTER, free_port


def test_demo_prints_a_working_base_url_and_key(tmp_path) -> None:
    port, mock_port = free_port(), free_port()
    env = {**os.environ, "ROUTER_DB": str(tmp_path / "demo.db")}
    env.pop("ROUTER_MOCK_URL", None)
    env.pop("ROUTER_CONFIG", None)
    cmd = [*ROUTER, "demo", "--port", str(port), "--mock-port", str(mock_port), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        printed = ""
        deadline = time.monotonic() + 30
        while "curl" not in printed and time.monotonic() < deadline:
            printed += proc.stdout.readline()
        base = re.search(r"router gateway listening on (http://\S+/v1)", printed).group(1)
        key = re.search(r"demo API key \(shown once, id key_\w+\): (rk-\S+)", printed).group(1)
        client = openai.OpenAI(base_url=base, api_key=key, max_retries=5, timeout=10)
        reply = client.chat.completions.create(model="mock/gpt-4o", messages=[{"role": "user", "content": "Hi"}])
        assert reply.choices[0].message.content
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
