"""The Anthropic Messages adapter: `POST {base}/messages` with `x-api-key` and `anthropic-version`.

Beta features travel in the client's `anthropic-beta` header, which the endpoint passes through per request.
"""

from __future__ import annotations

from ..errors import GatewayError
from .openai_compat import OpenAICompatProvider, upstream_message

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(OpenAICompatProvider):
    api = "messages"

    def default_headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers["anthropic-version"] = ANTHROPIC_VERSION
        headers.update(self.config.headers)
        if self.config.api_key:
            headers.update(self.auth_headers(self.config.api_key))
        return headers

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def url(self, endpoint: str, upstream_model: str) -> str:
        return f"{self._base}/messages"

    def error_from_status(self, status: int, body: bytes, retry_after: str | None) -> GatewayError:
        if status == 529:
            detail = upstream_message(body)
            said = f": {detail}" if detail else ""
            # 503 for OpenAI callers; Anthropic callers see 529 again (protocols.errors.error_status).
            return GatewayError(
                f"Upstream provider '{self.name}' is overloaded{said}",
                status=503,
                type="overloaded_error",
                code="upstream_overloaded",
                headers=[("retry-after", retry_after)] if retry_after else [],
            )
        return super().error_from_status(status, body, retry_after)
