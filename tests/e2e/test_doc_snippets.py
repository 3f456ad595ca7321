"""Every snippet the README and the docs mark as runnable runs, as written, against a live demo gateway.

A fenced ``sh``/``bash``/``python`` block whose previous line is ``<!-- test -->`` is a runnable snippet. Each one
runs in its own process against a gateway started here with the bundled demo config (plus the routing policies and
guardrails the demo documents, where the config lacks them) in front of the bundled mock, with ``ROUTER_API_KEY``
and ``ROUTER_ADMIN_KEY`` set as ``make run`` prints them, ``127.0.0.1:8080`` rewritten to this gateway's address,
and the ``router`` command on the PATH. A snippet passes when it exits with status 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from servers import Server, create_key, gateway_env, start_gateway, start_mock

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "python" / "router" / "demo.yaml"
MARK = "<!-- test -->"
FENCE = re.compile(r"^```(\w*)\s*$")
LANGUAGES = {"sh": "shell", "bash": "shell", "shell": "shell", "console": "shell", "python": "python", "py": "python"}
DEMO_ADDRESS = re.compile(r"(?:127\.0\.0\.1|localhost):8080")

# What the documentation promises `make run` serves. Added to the test's config only where demo.yaml lacks them.
DEMO_POLICIES = [
    {
        "name": "demo-fallback",
        "type": "fallback",
        "targets": [{"model": "mock/gpt-4o", "retries": 1}, {"model": "mock/gpt-4o-mini"}],
    },
    {
        "name": "demo-balance",
        "type": "load_balance",
        "targets": [{"model": "mock/gpt-4o", "weight": 70}, {"model": "mock/gpt-4o-mini", "weight": 30}],
    },
    {"name": "demo-fastest", "type": "latency", "targets": [{"model": "mock/gpt-4o"}, {"model": "mock/gpt-4o-mini"}]},
]
DEMO_GUARDRAILS = {"enabled": True, "categories": {"pii": "mask", "secrets": "mask"}}


class Snippet(NamedTuple):
    file: str
    line: int
    language: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def documents() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "hooks" not in p.parts)
    return [ROOT / "README.md", *docs]


def extract(path: Path, name: str | None = None) -> list[Snippet]:
    """The marked snippets of one Markdown file; a mark before anything but a fenced block is an error."""
    lines = path.read_text(encoding="utf-8").splitlines()
    name = name or str(path.relative_to(ROOT))
    out = []
    for i, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        opening = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if opening is None:
            raise ValueError(f"{name}:{i + 1}: {MARK} must be followed by a fenced code block")
        language = LANGUAGES.get(opening.group(1))
        if language is None:
            raise ValueError(f"{name}:{i + 1}: cannot run a {opening.group(1) or 'plain'} block")
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{name}:{i + 2}: unclosed code block")
        out.append(Snippet(name, i + 2, language, "\n".join(lines[i + 2 : end]) + "\n"))
    return out


SNIPPETS = [snippet for path in documents() for snippet in extract(path)]


@pytest.mark.one_engine("reads Markdown files only")
def test_extract_finds_marked_blocks_only(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "intro\n```sh\necho unmarked\n```\n<!-- test -->\n```sh\necho one\n```\n"
        "<!-- test -->\n```python\nprint('two')\n```\n"
    )
    found = [(s.line, s.language, s.code) for s in extract(page, "page.md")]
    assert found == [(6, "shell", "echo one\n"), (10, "python", "print('two')\n")]
    page.write_text("<!-- test -->\ntext\n")
    with pytest.raises(ValueError, match="must be followed by a fenced code block"):
        extract(page, "page.md")
    page.write_text("<!-- test -->\n```yaml\na: 1\n```\n")
    with pytest.raises(ValueError, match="cannot run a yaml block"):
        extract(page, "page.md")


@pytest.mark.one_engine("reads Markdown files only")
def test_readme_and_every_guide_have_runnable_snippets() -> None:
    files = {s.file for s in SNIPPETS}
    for required in ("README.md", "docs/getting-started.md", "docs/integrations.md"):
        assert required in files, f"{required} has no snippet marked {MARK}"


def _config(path: Path) -> Path:
    config = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    config.setdefault("policies", DEMO_POLICIES)
    config.setdefault("guardrails", DEMO_GUARDRAILS)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def router_bin(root: Path) -> Path:
    """A folder with a `router` command running this interpreter's router package (the code under test, which
    PYTHONPATH may point at), whether or not the virtualenv has the installed script."""
    folder = root / "bin"
    folder.mkdir(exist_ok=True)
    script = folder / "router"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m router "$@"\n')
    script.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    root = tmp_path_factory.mktemp("doc-snippets")
    mock = start_mock()
    admin_key = "rk-docs-admin-" + os.urandom(16).hex()
    env = gateway_env(root / "router.db", mock.base, _config(root / "demo.yaml"), admin_key=admin_key)
    try:
        gateway = start_gateway(env, workers=1)
    except BaseException:
        mock.stop()
        raise
    try:
        # A reader's own provider settings must not redirect the snippets (they set what they need themselves).
        inherited = {k: v for k, v in env.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
        snippet_env = {
            **inherited,
            "ROUTER_API_KEY": create_key(env, "docs-demo")["key"],
            "ROUTER_ADMIN_KEY": admin_key,
            # The `router` command, as `source .venv/bin/activate` provides it.
            "PATH": os.pathsep.join([str(router_bin(root)), str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
        yield gateway, snippet_env
    finally:
        gateway.stop()
        mock.stop()


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_snippet_runs(snippet: Snippet, demo_gateway: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    gateway, env = demo_gateway
    address = gateway.base.removeprefix("http://")
    code = DEMO_ADDRESS.sub(address, snippet.code)
    if snippet.language == "shell":
        command = ["bash", "-euo", "pipefail", "-c", code]
    else:
        script = tmp_path / "snippet.py"
        script.write_text(code, encoding="utf-8")
        command = [sys.executable, str(script)]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, (
        f"{snippet.id} exited with {result.returncode}\n--- code\n{code}--- stdout\n{result.stdout}"
        f"--- stderr\n{result.stderr}"
    )
