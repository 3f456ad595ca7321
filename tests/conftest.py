from __future__ import annotations

import os
from collections.abc import Iterator

import openai
import pytest

from servers import MockControl, Server, create_key, gateway_env, start_gateway, start_mock


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
def client(gateway: Server, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=api_key, max_retries=0, timeout=20)
