"""Fixtures for the mock provider tests (helpers live in mock_harness.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from mock_harness import PYTHON_DIR, MockServer, run_mock

try:
    import router.mock  # noqa: F401
except ImportError:  # not installed into the venv (no maturin develop yet): use the source tree
    sys.path.insert(0, str(PYTHON_DIR))


@pytest.fixture(scope="session")
def mock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    with run_mock(tmp_path_factory.mktemp("mock")) as server:
        yield server
        # Faults and bad input are answered, never crash the handler.
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture
def mock(mock_server: MockServer) -> MockServer:
    """The shared server with an empty request log and a fresh fail-rate sequence."""
    mock_server.reset()
    return mock_server
