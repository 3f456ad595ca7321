"""`make smoke-wheel`: the built wheel, installed without extras into a fresh virtualenv, serves a request.

What a user gets from `pip install router-….whl`: no dev dependency (the SDKs, pytest) and no system library
(the default build is pure Rust, so the extension must not link libhs). Starts `router mock` and `router serve`
from that virtualenv on free ports, mints a key with its `router` command, sends one chat and one Messages
request and fetches the dashboard's files with the standard library only, then stops both and checks neither
logged a traceback.

    python tests/smoke_wheel.py target/wheels/router-*.whl [--allow-hyperscan]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# A client in the smoke venv's own interpreter: urllib only, nothing the wheel does not bring.
CLIENT = """
import json, sys, urllib.request
url, key, path, body = sys.argv[1:5]
headers = {"content-type": "application/json", "authorization": "Bearer " + key, "anthropic-version": "2023-06-01"}
request = urllib.request.Request(url + path, data=body.encode(), headers=headers)
with urllib.request.urlopen(request, timeout=30) as response:
    print(json.dumps({"status": response.status, "body": json.loads(response.read())}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"smoke-wheel: {' '.join(map(str, proc.args))} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"smoke-wheel: nothing answered at {url} within {timeout:.0f}s")


def run(*cmd: str | Path, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], text=True, capture_output=True, timeout=600, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"smoke-wheel: {' '.join(map(str, cmd))} failed:\n{done.stdout}{done.stderr}")
    return done


def check_no_libhs(venv: Path) -> None:
    (extension,) = venv.glob("lib/python*/site-packages/router/_core*.so")
    if shutil.which("ldd") is None:
        print("smoke-wheel: no ldd here; not checking the extension's shared libraries")
        return
    linked = run("ldd", extension).stdout
    if "libhs" in linked:
        raise SystemExit(f"smoke-wheel: the default build links Hyperscan:\n{linked}")
    print("smoke-wheel: the extension does not link libhs (the default build is pure Rust)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--allow-hyperscan", action="store_true", help="the wheel was built with HYPERSCAN=1")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="router-smoke-"))
    procs: list[subprocess.Popen] = []
    try:
        venv = root / "venv"
        run(sys.executable, "-m", "venv", venv)
        bin_dir = venv / "bin"
        run(bin_dir / "pip", "install", "--quiet", "--disable-pip-version-check", args.wheel.resolve())
        # Without extras: a dev-only package must not be there, or the check below proves nothing. (httpx is not
        # one of them any more: the MCP SDK, a runtime dependency of the MCP gateway, brings it.)
        for dev_only in ("openai", "anthropic", "pytest", "hypothesis"):
            if subprocess.run([bin_dir / "python", "-c", f"import {dev_only}"], capture_output=True).returncode == 0:
                raise SystemExit(f"smoke-wheel: {dev_only} is installed without extras")
        if not args.allow_hyperscan:
            check_no_libhs(venv)
        mock_port, port = free_port(), free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "PYTHON", "VIRTUAL_ENV"))},
            "ROUTER_DB": str(root / "router.db"),
            "ROUTER_MOCK_URL": f"http://127.0.0.1:{mock_port}/v1",
            "ROUTER_ADMIN_KEY": secrets.token_urlsafe(32),
            "XDG_DATA_HOME": str(root / "data"),
        }
        logs = {name: (root / f"{name}.log").open("w+") for name in ("mock", "serve")}
        for name, cmd, health in (
            ("mock", ["mock", "--port", str(mock_port)], f"http://127.0.0.1:{mock_port}/_mock/health"),
            ("serve", ["serve", "--port", str(port), "--workers", "1"], f"http://127.0.0.1:{port}/healthz"),
        ):
            proc = subprocess.Popen([bin_dir / "router", *cmd], env=env, cwd=root, stdout=logs[name],
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            procs.append(proc)
            wait_up(health, proc)
        key = json.loads(run(bin_dir / "router", "keys", "create", "--name", "smoke", "--json", env=env).stdout)["key"]
        base = f"http://127.0.0.1:{port}"
        for path, body in (
            ("/v1/chat/completions", {"model": "mock/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}),
            ("/v1/messages", {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 50,
                              "messages": [{"role": "user", "content": "Hi"}]}),
        ):  # fmt: skip
            answer = json.loads(run(bin_dir / "python", "-c", CLIENT, base, key, path, json.dumps(body)).stdout)
            assert answer["status"] == 200, answer
            text = answer["body"]["choices"][0]["message"]["content"] if "choices" in answer["body"] else (
                answer["body"]["content"][0]["text"])  # fmt: skip
            assert text, answer
            print(f"smoke-wheel: {path} answered 200 from the wheel's gateway")
        # The dashboard's files, the copied npm ones included (maturin leaves gitignored files out unless told).
        for path in ("/ui/", "/ui/js/app.js", "/ui/vendor/uPlot.esm.js"):
            with urllib.request.urlopen(base + path, timeout=30) as response:
                assert response.status == 200 and response.read(), path
        print("smoke-wheel: the dashboard's files are served from the wheel")
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        for name, log in logs.items():
            log.seek(0)
            output = log.read()
            if "Traceback" in output:
                raise SystemExit(f"smoke-wheel: router {name} logged an error:\n{output}")
        print("smoke-wheel: ok")
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
