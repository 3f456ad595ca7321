from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from servers import MockControl, Server, create_key, gateway_engine, gateway_env, start_gateway, start_mock

# SDK clients a test body creates and leaves open. Their sockets would warn (an error here) whenever the garbage
# collector finds them, which on a busy machine is often during some later, unrelated test: they are closed
# when the test that made them ends instead. Clients made by fixtures are the fixtures' to close.
_made_by_test: list[Any] | None = None


def _track(cls: type) -> None:
    original = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if _made_by_test is not None:
            _made_by_test.append(self)

    cls.__init__ = __init__  # type: ignore[method-assign]


_track(openai.OpenAI)
_track(anthropic.Anthropic)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    global _made_by_test
    _made_by_test = made = []
    try:
        return (yield)
    finally:
        _made_by_test = None
        for client in made:
            client.close()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.one_engine("why")`: a test whose storage does not follow ROUTER_TEST_ENGINE (it starts no
    gateway, or picks its engine itself, or is about SQLite's files) runs in the default pass only; the
    PostgreSQL pass of the end-to-end suite (`ROUTER_TEST_ENGINE=postgresql`) skips it, saying why."""
    marker = item.get_closest_marker("one_engine")
    if marker is not None and gateway_engine() == "postgresql":
        if not marker.args:
            raise pytest.UsageError(f"{item.nodeid}: one_engine needs a reason")
        pytest.skip(f"one engine only: {marker.args[0]}")


@pytest.fixture(scope="session", autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A test that forgets ROUTER_DB gets a throwaway data folder, never the user's `~/.local/share/router`."""
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if saved is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = saved


@pytest.fixture(scope="session")
def mock_server() -> Iterator[Server]:
    server = start_mock()
    yield server
    server.stop()


@pytest.fixture
def mock(mock_server: Server) -> MockControl:
    control = MockControl(mock_server.base)
    control.reset()
    return control


@pytest.fixture(scope="session")
def gateway_env_vars(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return gateway_env(tmp_path_factory.mktemp("db") / "router.db", mock_server.base)


@pytest.fixture(scope="session")
def gateway(gateway_env_vars: dict[str, str]) -> Iterator[Server]:
    server = start_gateway(gateway_env_vars)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_key(gateway: Server) -> str:
    return create_key(gateway.env, "e2e")["key"]


@pytest.fixture
def client(gateway: Server, api_key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=api_key, max_retries=0, timeout=20) as sdk:
        yield sdk


ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database on each engine: a SQLite file, or a database of the session's throwaway
    PostgreSQL server (tests/pg.py). Tests of the store take this instead of a path, so they run on both."""
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("db") / "router.db")
        return
    import pg

    server = pg.server()
    url = server.fresh()
    yield url
    server.drop(url)
