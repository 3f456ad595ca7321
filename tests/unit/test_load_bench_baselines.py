"""benches/load.py keeps its bare-proxy baselines in the repository and says when one cannot run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_bench():
    spec = importlib.util.spec_from_file_location("load_bench", ROOT / "benches" / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_bare_proxy_the_benchmark_measures_is_in_the_repository() -> None:
    bench = _load_bench()
    assert bench.BASELINES == ROOT / "benches" / "baselines"
    for name, _label in bench.BARE_PROXIES:
        source = bench.BASELINES / name
        assert source.is_file(), f"{source} is missing"
        compile(source.read_text(encoding="utf-8"), str(source), "exec")


def test_a_missing_baseline_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bench = _load_bench()
    monkeypatch.setattr(bench, "BASELINES", tmp_path)
    with pytest.raises(RuntimeError, match=r"proxy_pr\.py is missing"):
        bench.start_baseline_proxy("proxy_pr.py", "http://127.0.0.1:9/v1/chat/completions")


def test_a_bare_proxy_forwards_to_the_upstream_it_is_given() -> None:
    import httpx

    from servers import start_mock

    bench = _load_bench()
    mock = start_mock()
    try:
        proxy = bench.start_baseline_proxy("proxy_pr.py", f"{mock.base}/v1/chat/completions")
        try:
            body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
            answer = httpx.post(f"{proxy.base}/v1/chat/completions", json=body, timeout=20)
            assert answer.status_code == 200
            assert answer.json()["object"] == "chat.completion"
        finally:
            proxy.stop()
    finally:
        mock.stop()
