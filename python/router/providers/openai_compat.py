"""The OpenAI-compatible adapter: OpenAI, Azure OpenAI, vLLM, Ollama, Mistral, Groq, DeepSeek, xAI, Together.

They all speak `POST {base}/chat/completions` and `POST {base}/embeddings`; they differ only in how the
key is sent (bearer token or Azure's `api-key`), in extra headers, and in Azure's deployment paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from urllib.parse import quote

import msgspec

from ..config import ProviderConfig, Timeouts
from ..errors import GatewayError, InvalidRequest, NotFound, UpstreamError
from .fetch import MediaFetcher
from .transport import Response, Transport

_ENDPOINT_PATHS = {"chat": "chat/completions", "embeddings": "embeddings", "images": "images/generations"}
_encoder = msgspec.json.Encoder()


class _ErrorDetail(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail | str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


class OpenAICompatProvider:
    # The wire format of this provider's generation endpoint (the names router._core.Transcoder uses).
    api = "chat"
    # Whether its image generation models also answer chat requests (Gemini's do; OpenAI's gpt-image do not).
    chat_images = False
    # Whether it takes images and PDFs as bytes only, so the gateway fetches URL ones (providers/fetch.py).
    fetches_media = False

    def __init__(self, name: str, config: ProviderConfig, timeouts: Timeouts) -> None:
        self.name = name
        self.config = config
        self.timeouts = timeouts
        self._base = config.base_url.rstrip("/")
        self._transport: Transport | None = None
        self._media: MediaFetcher | None = None

    def default_headers(self) -> dict[str, str]:
        """Headers on every upstream request: JSON, the configured extras, and the provider credential."""
        headers = {"content-type": "application/json", "accept": "application/json", **self.config.headers}
        if self.config.api_key:
            headers.update(self.auth_headers(self.config.api_key))
        return headers

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """The credential header for `api_key`; sent per request, it overrides the configured key (BYOK)."""
        is_bearer = self.config.auth_header.lower() == "authorization"
        return {self.config.auth_header: f"Bearer {api_key}" if is_bearer else api_key}

    def start(self) -> None:
        """Open the connection pool. Called inside the worker's event loop."""
        config = self.config
        self._transport = Transport(
            self.timeouts, config.max_connections, self.default_headers(), self.name, config.pool_wait
        )

    def load(self) -> tuple[int, int]:
        """(requests in flight, requests queued for a slot) to this provider in this worker."""
        gate = self._transport.gate if self._transport is not None else None
        return (gate.in_flight, gate.queued) if gate is not None else (0, 0)

    async def with_media(self, body: bytes) -> bytes:
        """A Messages request body with its image and document URLs fetched and inlined (`fetches_media`)."""
        if not self.fetches_media or b'"url"' not in body:
            return body
        request = msgspec.json.decode(body)
        if not isinstance(request, dict):
            return body
        if self._media is None:
            config = self.config
            self._media = MediaFetcher(
                self.name, config.fetch_private_urls, config.fetch_max_bytes, config.fetch_timeout
            )
        return msgspec.json.encode(request) if await self._media.inline(request) else body

    async def close(self) -> None:
        if self._media is not None:
            await self._media.close()
            self._media = None
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    def url(self, endpoint: str, upstream_model: str) -> str:
        path = _ENDPOINT_PATHS[endpoint]
        if self.config.azure_api_version:
            deployment = quote(upstream_model, safe="")
            return f"{self._base}/openai/deployments/{deployment}/{path}?api-version={self.config.azure_api_version}"
        return f"{self._base}/{path}"

    def post(
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> Awaitable[tuple[Response, bytes]]:
        """The transport's call itself, awaited by the caller (no coroutine of its own on the unary path)."""
        assert self._transport is not None
        return self._transport.post(url, extra, body, request_id)

    @asynccontextmanager
    async def stream(
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> AsyncIterator[Response]:
        assert self._transport is not None
        headers = {"x-request-id": request_id, "accept": "text/event-stream", **(extra or {})}
        async with self._transport.stream(url, headers, body) as response:
            del body  # sent: a stream lasts minutes, its prompt (tens of KiB for an agent) need not
            yield response

    async def generate_images(
        self, url: str, fields: dict[str, msgspec.Raw], request_id: str, extra: dict[str, str] | None = None
    ) -> bytes:
        """`POST /v1/images/generations` with the caller's fields (model swapped in): the answer in OpenAI's Images
        shape, or the upstream's error as ours."""
        response, data = await self.post(url, _encoder.encode(fields), request_id, extra)
        if response.status != 200:
            raise self.error_from_status(response.status, data, response.get_header("retry-after"))
        return data

    def error_from_status(self, status: int, body: bytes, retry_after: str | None) -> GatewayError:
        """Turn an upstream error answer into the error our client sees (remembering what the upstream said)."""
        error = self._mapped_error(status, body, retry_after)
        error.upstream_status = status
        error.retry_after = retry_after
        return error

    def _mapped_error(self, status: int, body: bytes, retry_after: str | None) -> GatewayError:
        detail = upstream_message(body)
        said = f": {detail}" if detail else ""
        if status == 429:
            headers = [("retry-after", retry_after)] if retry_after else []
            return GatewayError(
                f"Upstream provider '{self.name}' is rate limiting requests{said}",
                status=429,
                type="rate_limit_error",
                code="upstream_rate_limited",
                headers=headers,
            )
        if status in (401, 403):
            # The provider rejected *our* credentials: the caller's key is fine, the gateway is misconfigured.
            return UpstreamError(
                f"Upstream provider '{self.name}' rejected the gateway's credentials (HTTP {status}).",
                code="upstream_auth_failed",
            )
        if status == 404:
            return NotFound(f"Upstream provider '{self.name}' answered 404{said}", code="upstream_not_found")
        if status in (400, 409, 413, 422):
            return InvalidRequest(f"Upstream provider '{self.name}' rejected the request{said}", status=status)
        if status in (408, 504):
            message = f"Upstream provider '{self.name}' timed out{said}"
            return UpstreamError(message, code="upstream_timeout", status=504)
        return UpstreamError(f"Upstream provider '{self.name}' failed with HTTP {status}{said}", code="upstream_error")


def upstream_message(body: bytes) -> str | None:
    try:
        parsed = _error_decoder.decode(body)
    except msgspec.DecodeError:
        return None
    error = parsed.error
    if isinstance(error, str):
        return error[:500]
    if error is not None and error.message:
        return error.message[:500]
    return None
