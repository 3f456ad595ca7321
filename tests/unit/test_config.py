from __future__ import annotations

import pytest

from router.config import DEFAULT_CONFIG, load_config, parse_config
from router.errors import ConfigError

MINIMAL = """
providers:
  openai:
    base_url: https://api.openai.com/v1
    api_key: env:TEST_OPENAI_KEY
models:
  - id: openai/gpt-4o
    prices: {input: 2.5, output: 10}
"""


def test_bundled_demo_config_serves_mock_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTER_MOCK_URL", raising=False)
    config = load_config(DEFAULT_CONFIG)
    assert {m.id for m in config.models} >= {"mock/gpt-4o", "mock/gpt-4o-mini", "mock/text-embedding-3-small"}
    assert config.providers["mock"].base_url == "http://127.0.0.1:9090/v1"


def test_mock_url_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_MOCK_URL", "http://127.0.0.1:1234/v1")
    assert load_config(DEFAULT_CONFIG).providers["mock"].base_url == "http://127.0.0.1:1234/v1"


def test_env_reference_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-from-env")
    config = parse_config(MINIMAL, "gw.yaml")
    assert config.providers["openai"].api_key == "sk-from-env"
    assert config.models[0].prices.input == 2.5


def test_missing_env_names_file_path_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_OPENAI_KEY", raising=False)
    with pytest.raises(ConfigError) as err:
        parse_config(MINIMAL, "gw.yaml")
    assert str(err.value) == "gw.yaml: at providers.openai.api_key: environment variable TEST_OPENAI_KEY is not set"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "providers: {p: {base_url: 'http://x'}}\nmodels: [{id: p/m, prices: {input: cheap}}]",
            "cfg.yaml: at models[0].prices.input: Expected float, got str",
        ),
        (
            "providers: {p: {base_url: 'http://x'}}\nmodels: [{id: p/m, colour: red}]",
            "cfg.yaml: at models[0]: Object contains unknown field colour",
        ),
        ("providers: {}\n", "cfg.yaml: Object missing required field models"),
        (
            "providers: {p: {base_url: 'http://x'}}\nmodels: [{id: q/m}]",
            "cfg.yaml: at models[0].id: provider 'q' is not defined in providers (defined: p)",
        ),
        (
            "providers: {p: {base_url: 'http://x'}}\nmodels: [{id: nomodel}]",
            "cfg.yaml: at models[0].id: model id 'nomodel' must look like 'provider/model'",
        ),
        (
            "providers: {p: {base_url: 'http://x'}}\nmodels: [{id: p/m}, {id: p/m}]",
            "cfg.yaml: at models[1].id: duplicate model id 'p/m'",
        ),
        (
            "providers: {p: {base_url: 'ftp://x'}}\nmodels: []",
            "cfg.yaml: at providers.p.base_url: expected an http:// or https:// URL",
        ),
        (
            "providers: {p: {base_url: 'http://x'}}\nmodels: []\ntimeouts: {connect: 0}",
            "cfg.yaml: at timeouts.connect: expected a positive number of seconds",
        ),
        ("- just\n- a list\n", "cfg.yaml: expected a mapping at the top level, got list"),
        (
            "providers: {p: {base_url: 'http://x', capabilities: [teleport]}}\nmodels: []",
            "cfg.yaml: at providers.p: Object contains unknown field capabilities",
        ),
    ],
)
def test_errors_name_file_and_key_path(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "cfg.yaml")
    assert str(err.value).replace("`", "") == expected


def test_invalid_yaml_is_reported_with_file() -> None:
    with pytest.raises(ConfigError, match=r"^cfg.yaml: not valid YAML"):
        parse_config("providers: [unclosed", "cfg.yaml")


def test_unreadable_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")


def test_unknown_capability_rejected() -> None:
    with pytest.raises(ConfigError, match=r"at models\[0\].capabilities\[0\]"):
        parse_config("providers: {p: {base_url: 'http://x'}}\nmodels: [{id: p/m, capabilities: [teleport]}]", "c")
