"""Google Gemini on AI Studio (`kind: gemini`): `generateContent` and `streamGenerateContent?alt=sse` with an API key.

To the gateway it is an Anthropic Messages upstream (`api = "messages"`): bodies are translated here
(`gemini_content`) and Gemini's SSE chunks re-encoded as Messages SSE for the shared stream transcoder, in Rust
(`GeminiStreamTranslator`), or in Python (`gemini_content.StreamTranslator`) for answers grounded with Google
Search, whose citations are cut from the streamed text.

- https://ai.google.dev/api/generate-content#method:-models.generatecontent
- https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
- https://ai.google.dev/gemini-api/docs/api-key (the `x-goog-api-key` header)
"""

from __future__ import annotations

import asyncio
import builtins
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import msgspec

from .._core import GeminiStreamTranslator, SseParser
from ..config import ProviderConfig, Timeouts
from ..errors import GatewayError, InvalidRequest, UpstreamError
from . import imagen
from .gemini_content import StreamTranslator, gemini_to_messages, messages_to_gemini
from .openai_compat import OpenAICompatProvider
from .transport import Response

__all__ = ["GeminiProvider"]

DEFAULT_ENDPOINT = "https://generativelanguage.googleapis.com/v1beta"


class GeminiStreamResponse:
    """A streamGenerateContent response as the stream loop reads it: `read_chunk` yields Messages SSE bytes.

    `grounded`: the request has Google Search on, so the answer may carry groundingMetadata (Python translator).
    """

    def __init__(self, response: Response, model: str, provider: str, grounded: bool = False) -> None:
        self._response = response
        self.status = response.status
        message_id = f"msg_gemini_{os.urandom(12).hex()}"
        self._native = None if grounded else GeminiStreamTranslator(model, message_id)
        self._parser = SseParser() if grounded else None
        self._translator = StreamTranslator(model, message_id) if grounded else None
        self.read_chunk = self._read_grounded if grounded else self._read_native
        self._provider = provider
        self._finished = False
        self.body_reader = self

    def get_header(self, name: str) -> str | None:
        return self._response.get_header(name)

    async def bytes(self) -> builtins.bytes:
        return builtins.bytes(await self._response.bytes())

    async def _read_native(self) -> builtins.bytes | None:
        # Once per upstream chunk: one read, one copy into bytes and one Rust call.
        native = self._native
        assert native is not None
        read = self._response.body_reader.read_chunk
        while not self._finished:
            chunk = await read()
            if chunk is None:
                self._finished = True
                return native.finish() or None
            try:
                out = native.feed(builtins.bytes(chunk))
            except (ValueError, AttributeError, TypeError):
                raise self._malformed() from None
            if out:
                return out
        return None

    async def _read_grounded(self) -> builtins.bytes | None:
        parser, translator = self._parser, self._translator
        assert parser is not None and translator is not None
        read = self._response.body_reader.read_chunk
        while not self._finished:
            chunk = await read()
            if chunk is None:
                self._finished = True
                return translator.finish() or None
            try:
                out = b""
                for event in parser.feed(builtins.bytes(chunk)):
                    out += translator.chunk(event.data)
            except (ValueError, AttributeError, TypeError):  # msgspec.DecodeError is a ValueError
                raise self._malformed() from None
            if out:
                return out
        return None

    def _malformed(self) -> UpstreamError:
        return UpstreamError(
            f"Upstream provider '{self._provider}' sent a malformed stream event.", code="upstream_invalid_stream"
        )


# OpenAI Images `size` → Gemini `imageConfig.aspectRatio` (https://ai.google.dev/gemini-api/docs/image-generation).
_ASPECT = {"1536x1024": "3:2", "1024x1536": "2:3", "1792x1024": "16:9", "1024x1792": "9:16"}
# Gemini finish reasons that mean the image was withheld by Google's safety filters.
_BLOCKED = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"})


# Google's camelCase field names, as the API spells them.
class _InlineData(msgspec.Struct):
    data: str
    mimeType: str = "image/png"


class _Part(msgspec.Struct):
    inlineData: _InlineData | None = None
    text: str | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct):
    content: _Content | None = None
    finishReason: str | None = None


class _UsageMetadata(msgspec.Struct):
    promptTokenCount: int = 0
    candidatesTokenCount: int = 0


class _PromptFeedback(msgspec.Struct):
    blockReason: str | None = None


class _ImageReply(msgspec.Struct):
    candidates: list[_Candidate] = []
    usageMetadata: _UsageMetadata | None = None
    promptFeedback: _PromptFeedback | None = None


_image_reply = msgspec.json.Decoder(_ImageReply)


class GeminiProvider(OpenAICompatProvider):
    api = "messages"
    chat_images = True
    fetches_media = True
    # Imagen's `outputOptions` (JPEG output): Vertex AI only.
    imagen_output_options = False

    def __init__(self, name: str, config: ProviderConfig, timeouts: Timeouts) -> None:
        super().__init__(name, config, timeouts)
        self._base = (config.base_url or DEFAULT_ENDPOINT).rstrip("/")
        self._models: dict[str, str] = {}
        # generateContent URL → its streamGenerateContent URL, built once per model.
        self._stream_urls: dict[str, str] = {}

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    def url(self, endpoint: str, upstream_model: str) -> str:
        model = upstream_model.removeprefix("google/")
        method = "predict" if endpoint == "images" and imagen.is_imagen(model) else "generateContent"
        url = f"{self._base}/models/{quote(model, safe='')}:{method}"
        self._models[url] = model
        return url

    def prepare(self, url: str, body: bytes, stream: bool) -> tuple[str, bytes, str]:
        """(upstream URL, generateContent body, model) for a Messages request body."""
        model = self._models[url]
        try:
            request: Any = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise InvalidRequest("The request body is not valid JSON.") from None
        if stream:
            streamed = self._stream_urls.get(url)
            if streamed is None:
                streamed = self._stream_urls[url] = (
                    url.replace(":generateContent", ":streamGenerateContent") + "?alt=sse"
                )
            url = streamed
        return url, msgspec.json.encode(messages_to_gemini(request, model)), model

    async def request_headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        """Per-request credentials; AI Studio's API key is a default header, overridden by a BYOK key."""
        return dict(extra or {})

    async def post(
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> tuple[Response, bytes]:
        assert self._transport is not None
        target, payload, model = self.prepare(url, await self.with_media(body), False)
        headers = {"x-request-id": request_id, **await self.request_headers(extra)}
        response, data = await self._transport.post(target, headers, payload)
        if response.status != 200:
            return response, data
        try:
            reply = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return response, data
        message_id = f"msg_gemini_{reply.get('responseId') or os.urandom(12).hex()}"
        return response, msgspec.json.encode(gemini_to_messages(reply, model, message_id))

    @asynccontextmanager
    async def stream(  # type: ignore[override]
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> AsyncIterator[GeminiStreamResponse]:
        assert self._transport is not None
        target, payload, model = self.prepare(url, await self.with_media(body), True)
        headers = {"x-request-id": request_id, "accept": "text/event-stream", **await self.request_headers(extra)}
        # Google Search is only ever a tool the request asked for (a JSON key: in text, quotes are escaped).
        grounded = b'"google_search"' in payload
        async with self._transport.stream(target, headers, payload) as response:
            yield GeminiStreamResponse(response, model, self.name, grounded)

    async def generate_images(
        self, url: str, fields: dict[str, msgspec.Raw], request_id: str, extra: dict[str, str] | None = None
    ) -> bytes:
        """OpenAI Images on a Gemini image model: one `generateContent` call with `responseModalities: [IMAGE]` per
        image (image models take no `candidateCount`), run concurrently; inline images come back as `b64_json`, or
        as `data:` URLs for `response_format: url` (Gemini hosts no image URLs)."""
        assert self._transport is not None
        options = {name: msgspec.json.decode(raw) for name, raw in fields.items() if name != "model"}
        model = self._models[url]
        if url.endswith(":predict"):
            return await self._imagen(url, model, options, request_id, extra)
        self._check_image_options(model, options)
        generation: dict[str, Any] = {"responseModalities": ["IMAGE"]}
        aspect = _ASPECT.get(options.get("size") or "")
        if aspect is not None:
            generation["imageConfig"] = {"aspectRatio": aspect}
        payload = msgspec.json.encode(
            {"contents": [{"role": "user", "parts": [{"text": options["prompt"]}]}], "generationConfig": generation}
        )
        headers = {"x-request-id": request_id, **await self.request_headers(extra)}
        replies = await asyncio.gather(
            *(self._transport.post(url, headers, payload) for _ in range(options.get("n") or 1))
        )
        images: list[dict[str, str]] = []
        prompt_tokens = output_tokens = 0
        as_url = options.get("response_format") == "url"
        for response, data in replies:
            if response.status != 200:
                raise self.error_from_status(response.status, data, response.get_header("retry-after"))
            try:
                reply = _image_reply.decode(data)
            except msgspec.DecodeError:
                raise UpstreamError(
                    f"Upstream provider '{self.name}' returned an invalid JSON response.",
                    code="upstream_invalid_response",
                ) from None
            if reply.usageMetadata is not None:
                prompt_tokens += reply.usageMetadata.promptTokenCount
                output_tokens += reply.usageMetadata.candidatesTokenCount
            blocked = reply.promptFeedback.blockReason if reply.promptFeedback is not None else None
            for candidate in reply.candidates:
                if candidate.finishReason in _BLOCKED:
                    blocked = candidate.finishReason
                for part in candidate.content.parts if candidate.content is not None else ():
                    if part.inlineData is not None:
                        inline = part.inlineData
                        image = f"data:{inline.mimeType};base64,{inline.data}" if as_url else inline.data
                        images.append({"url": image} if as_url else {"b64_json": image})
            if blocked:
                raise InvalidRequest(
                    f"The model '{model}' refused to generate this image (Gemini: {blocked}).",
                    param="prompt",
                    code="content_policy_violation",
                )
        if not images:
            raise UpstreamError(
                f"Upstream provider '{self.name}' answered without an image.", code="upstream_invalid_response"
            )
        total = prompt_tokens + output_tokens
        usage = {"input_tokens": prompt_tokens, "output_tokens": output_tokens, "total_tokens": total}
        return msgspec.json.encode({"created": int(time.time()), "data": images, "usage": usage})

    async def _imagen(
        self, url: str, model: str, options: dict[str, Any], request_id: str, extra: dict[str, str] | None
    ) -> bytes:
        """OpenAI Images on an Imagen model (`providers.imagen`): `n` over concurrent `:predict` calls."""
        assert self._transport is not None
        bodies = imagen.predict_bodies(model, options, self.imagen_output_options)
        headers = {"x-request-id": request_id, **await self.request_headers(extra)}
        replies = await asyncio.gather(*(self._transport.post(url, headers, body) for body in bodies))
        images: list[dict[str, str]] = []
        filtered = None
        for response, data in replies:
            if response.status != 200:
                raise self.error_from_status(response.status, data, response.get_header("retry-after"))
            try:
                found, reason = imagen.read_predictions(data, options.get("response_format") == "url")
            except msgspec.DecodeError:
                raise UpstreamError(
                    f"Upstream provider '{self.name}' returned an invalid JSON response.",
                    code="upstream_invalid_response",
                ) from None
            images += found
            filtered = filtered or reason
        if not images:
            if filtered is not None:
                raise InvalidRequest(
                    f"The model '{model}' refused to generate this image (Imagen: {filtered[:300]}).",
                    param="prompt",
                    code="content_policy_violation",
                )
            raise UpstreamError(
                f"Upstream provider '{self.name}' answered without an image.", code="upstream_invalid_response"
            )
        # Imagen bills per image, not per token: the price table's `images` entry prices them.
        usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        return msgspec.json.encode({"created": int(time.time()), "data": images, "usage": usage})

    @staticmethod
    def _check_image_options(model: str, options: dict[str, Any]) -> None:
        """Refuse what Gemini cannot do rather than silently doing something else."""
        if options.get("background") == "transparent":
            raise InvalidRequest(
                f"The model '{model}' cannot make transparent backgrounds; use 'auto' or 'opaque'.",
                param="background",
                code="unsupported_value",
            )
        if options.get("output_format") not in (None, "png"):
            raise InvalidRequest(
                f"The model '{model}' returns PNG images only; leave 'output_format' out or set it to 'png'.",
                param="output_format",
                code="unsupported_value",
            )
        if not isinstance(options.get("prompt"), str):
            raise InvalidRequest("Invalid 'prompt': expected a string.", param="prompt", code="invalid_value")

    def error_from_status(self, status: int, body: bytes, retry_after: str | None) -> GatewayError:
        # Google answers a bad API key with 400 INVALID_ARGUMENT: that is the gateway's credential, not the
        # caller's request. https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes
        if status == 400 and b"API_KEY_INVALID" in body:
            error = UpstreamError(
                f"Upstream provider '{self.name}' rejected the gateway's credentials (HTTP 400: API key not valid).",
                code="upstream_auth_failed",
            )
            error.upstream_status = 401
            return error
        return super().error_from_status(status, body, retry_after)
