from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from servers import Server, create_key, gateway_env, start_gateway

# A gateway with tight limits, for the timeout and size-limit tests.
TIGHT_CONFIG = """
server:
  max_body_bytes: 4096
providers:
  mock:
    base_url: env:ROUTER_MOCK_URL
    api_key: mock-upstream-key
    timeouts: {connect: 2, first_byte: 1.5, idle_read: 1.5, total: 30}
models:
  - id: mock/gpt-4o
    upstream_model: gpt-4o
    capabilities: [streaming, tools]
  - id: mock/flaky
    upstream_model: gpt-4o@fail=503
"""


@pytest.fixture(scope="session")
def tight_gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tight")
    config = root / "tight.yaml"
    config.write_text(TIGHT_CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, config))
    server.key = create_key(server.env, "tight")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def tight_client(tight_gateway: Server) -> Iterator[openai.OpenAI]:
    base = f"{tight_gateway.base}/v1"
    with openai.OpenAI(base_url=base, api_key=tight_gateway.key, max_retries=0, timeout=20) as sdk:
        yield sdk
