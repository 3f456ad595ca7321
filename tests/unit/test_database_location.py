"""Where the database lives: ROUTER_DB, else the config's `database:` beside the config, else the data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import DEFAULT_CONFIG
from router.store import database_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ROUTER_DB", "ROUTER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def test_the_bundled_demo_config_uses_demo_db_in_the_data_folder(tmp_path: Path) -> None:
    assert database_url(None) == str(tmp_path / "data" / "router" / "demo.db")
    assert database_url(None, DEFAULT_CONFIG) == str(tmp_path / "data" / "router" / "demo.db")


def test_another_config_uses_router_db_in_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gw.yaml"
    assert database_url(None, config) == str(tmp_path / "data" / "router" / "router.db")
    monkeypatch.setenv("ROUTER_CONFIG", str(config))
    assert database_url(None) == str(tmp_path / "data" / "router" / "router.db")


def test_without_xdg_data_home_the_default_is_under_local_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME")
    assert database_url(None) == str(Path.home() / ".local" / "share" / "router" / "demo.db")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")  # the spec says: absolute paths only
    assert database_url(None) == str(Path.home() / ".local" / "share" / "router" / "demo.db")


def test_a_relative_database_key_is_beside_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "gw.yaml"
    assert database_url("state/gw.db", config) == str(tmp_path / "etc" / "state" / "gw.db")
    assert database_url("/srv/gw.db", config) == "/srv/gw.db"
    assert database_url(":memory:", config) == ":memory:"


def test_router_db_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_DB", "/var/lib/router/router.db")
    assert database_url("state/gw.db", Path("/etc/gw.yaml")) == "/var/lib/router/router.db"
    assert database_url(None) == "/var/lib/router/router.db"
