"""Mock OpenAI-compatible provider for demos, tests and load tests (``router mock``).

Endpoints: ``POST /v1/chat/completions`` (JSON and SSE), ``POST /v1/embeddings``, ``GET /v1/models[/{id}]``, and the
control endpoints ``GET /_mock/health``, ``GET /_mock/requests``, ``POST /_mock/reset``.

Knobs, highest precedence first: ``x-mock-<knob>`` headers, the body field ``"mock": {...}``, ``model@knob=value``
suffixes, then the process defaults (``router mock`` flags, else ``ROUTER_MOCK_<KNOB>`` env vars). Knob names:
``tokens``, ``ttft_ms``, ``token_delay_ms``, ``fail`` (none|400|429|500|503|hang|drop|malformed), ``fail_rate``,
``fail_first``, ``drop_after``, ``retry_after``, ``echo``, ``tool_calls`` (headers spell them with dashes).
"""

from .server import add_arguments, run, serve

__all__ = ["add_arguments", "run", "serve"]
