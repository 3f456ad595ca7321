"""Google Vertex AI (`kind: vertex`): Gemini `generateContent` / `streamGenerateContent`, and Anthropic's Claude
models through `rawPredict` / `streamRawPredict`, with a service account's OAuth2 token.

- https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent
- https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude (rawPredict, the
  `anthropic_version: vertex-2023-10-16` body field, the model in the URL)
- https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations (regional and `global` endpoints)

Model names are `google/<gemini model>` or `anthropic/<claude model>` (a bare `claude…` name is Anthropic's),
optionally followed by `@<location>`: `anthropic/claude-sonnet-4-5@20250929@europe-west1`.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import quote

import msgspec

from ..config import ProviderConfig, Timeouts
from ..errors import ConfigError, InvalidRequest
from .gemini import GeminiProvider, GeminiStreamResponse
from .google_auth import load_service_account, service_account_tokens
from .oauth import RefreshedTokens, TokenSource
from .transport import Response

__all__ = ["VertexProvider", "split_location"]

ANTHROPIC_VERSION = "vertex-2023-10-16"
# A Google Cloud location: global, europe-west1, us-central1, asia-northeast1 …
_LOCATION = re.compile(r"^(global|[a-z]+-[a-z]+\d+)$")


def split_location(name: str) -> tuple[str, str | None]:
    """`google/gemini-2.5-pro@europe-west1` → (`google/gemini-2.5-pro`, `europe-west1`); Claude's own
    `@20250929` version suffix is not a location and stays."""
    base, sep, suffix = name.rpartition("@")
    if sep and _LOCATION.match(suffix):
        return base, suffix
    return name, None


def endpoint(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com/v1"
    return f"https://{location}-aiplatform.googleapis.com/v1"


class VertexProvider(RefreshedTokens, GeminiProvider):
    imagen_output_options = True

    def __init__(self, name: str, config: ProviderConfig, timeouts: Timeouts) -> None:
        super().__init__(name, config, timeouts)
        where = f"providers.{name}"
        self._location = config.region or "global"
        self._project = config.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not self._project:
            raise ConfigError(f"{where}.project: a Vertex AI provider needs the Google Cloud project id")
        credentials = config.service_account or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        self._tokens: TokenSource | None = None
        if credentials:
            account = load_service_account(credentials, f"{where}.service_account")
            self._tokens = service_account_tokens(account, name)
        elif not config.api_key:
            raise ConfigError(
                f"{where}.service_account: a Vertex AI provider needs a service-account key (file path or JSON), "
                "GOOGLE_APPLICATION_CREDENTIALS, or an api_key (an access token)"
            )
        # url → (publisher, model) for the request translation.
        self._vertex: dict[str, tuple[str, str]] = {}

    def default_headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json", **self.config.headers}
        if self._tokens is None and self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"}

    def price_key(self, upstream_model: str) -> str:
        """The name the price table knows: the model without its publisher."""
        return split_location(upstream_model)[0].rpartition("/")[2]

    def region_of(self, upstream_model: str) -> str:
        return split_location(upstream_model)[1] or self._location

    def url(self, endpoint_name: str, upstream_model: str) -> str:
        name, location = split_location(upstream_model)
        location = location or self._location
        publisher, sep, model = name.partition("/")
        if not sep:
            publisher, model = ("anthropic" if name.startswith("claude") else "google"), name
        base = self.config.base_url.rstrip("/").replace("{location}", location) if self.config.base_url else None
        method = "rawPredict" if publisher == "anthropic" else "generateContent"
        if endpoint_name == "images" and publisher == "google" and model.startswith("imagen"):
            method = "predict"  # Imagen (providers.imagen)
        url = (
            f"{base or endpoint(location)}/projects/{quote(self._project or '', safe='')}/locations/{location}"
            f"/publishers/{publisher}/models/{quote(model, safe='@')}:{method}"
        )
        self._vertex[url] = (publisher, model)
        self._models[url] = model
        return url

    def prepare(self, url: str, body: bytes, stream: bool) -> tuple[str, bytes, str]:
        publisher, model = self._vertex[url]
        if publisher != "anthropic":
            return super().prepare(url, body, stream)
        # Claude on Vertex takes the Messages body itself, the model in the URL and Vertex's API version.
        try:
            request: Any = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise InvalidRequest("The request body is not valid JSON.") from None
        request.pop("model", None)
        request["anthropic_version"] = ANTHROPIC_VERSION
        if stream:
            url = url.replace(":rawPredict", ":streamRawPredict")
        return url, msgspec.json.encode(request), model

    async def request_headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        if extra and "authorization" in extra:
            return dict(extra)
        headers = dict(extra or {})
        if self._tokens is not None:
            headers["authorization"] = f"Bearer {await self._tokens.token()}"
        return headers

    async def post(
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> tuple[Response, bytes]:
        if self._vertex[url][0] != "anthropic":
            return await super().post(url, body, request_id, extra)
        assert self._transport is not None
        target, payload, _ = self.prepare(url, await self.with_media(body), False)
        headers = {"x-request-id": request_id, **await self.request_headers(extra)}
        return await self._transport.post(target, headers, payload)

    def stream(  # type: ignore[override]
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> AbstractAsyncContextManager[GeminiStreamResponse | Response]:
        # Gemini models take Gemini's own stream directly, without a context manager wrapped around it.
        if self._vertex[url][0] != "anthropic":
            return super().stream(url, body, request_id, extra)
        return self._anthropic_stream(url, body, request_id, extra)

    @asynccontextmanager
    async def _anthropic_stream(
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None
    ) -> AsyncIterator[Response]:
        assert self._transport is not None
        target, payload, _ = self.prepare(url, await self.with_media(body), True)
        headers = {"x-request-id": request_id, "accept": "text/event-stream", **await self.request_headers(extra)}
        # Anthropic's own SSE: it goes to the stream transcoder as from `kind: anthropic`.
        async with self._transport.stream(target, headers, payload) as response:
            yield response

    async def generate_images(
        self, url: str, fields: dict[str, msgspec.Raw], request_id: str, extra: dict[str, str] | None = None
    ) -> bytes:
        publisher, model = self._vertex[url]
        if publisher != "google":
            raise InvalidRequest(
                f"The model '{model}' on Vertex AI does not generate images (only Google's Gemini and Imagen "
                "models do).",
                param="model",
                code="model_not_supported",
            )
        return await super().generate_images(url, fields, request_id, extra)
