"""The Amazon Bedrock adapter (`kind: bedrock`): Converse and ConverseStream, SigV4-signed or with a Bedrock API key.

To the rest of the gateway it is an Anthropic Messages upstream (`api = "messages"`): the body it is handed is
translated to Converse here (`bedrock_converse`), the reply back to a Messages body, and the ConverseStream
answer (AWS event-stream framing) to Messages SSE in Rust (`ConverseStreamTranslator`: both CRCs checked, no
Python object per event), which the shared stream transcoder then turns into the caller's format.

- Converse: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
- ConverseStream: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
- Endpoints: https://docs.aws.amazon.com/general/latest/gr/bedrock.html (bedrock-runtime.<region>.amazonaws.com)
- API keys: https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys.html (`Authorization: Bearer …`)
- InvokeModel (`bedrock_api: invoke`, Anthropic models in their own Messages body, `anthropic_version:
  bedrock-2023-05-31`): https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html,
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html; its
  stream (InvokeModelWithResponseStream) carries each Anthropic SSE event base64-encoded in a `chunk` event.
"""

from __future__ import annotations

import base64
import builtins
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from .._core import ConverseStreamTranslator, EventStreamDecoder, EventStreamError
from ..config import ProviderConfig, Timeouts
from ..errors import ConfigError, GatewayError, InvalidRequest, NotFound, UpstreamError
from ..protocols.anthropic import sse_event
from .bedrock_converse import converse_to_messages, is_anthropic, messages_to_converse
from .openai_compat import OpenAICompatProvider
from .sigv4 import Credentials, SigV4Signer
from .transport import Response

__all__ = ["BedrockProvider", "split_region"]

DEFAULT_ENDPOINT = "https://bedrock-runtime.{region}.amazonaws.com"
SERVICE = "bedrock"
# An AWS region name: eu-central-1, us-gov-west-1, ap-southeast-2 …
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
# ConverseStream messages are small JSON events; anything near this is not Bedrock.
MAX_EVENT_BYTES = 1024 * 1024
INVOKE_ANTHROPIC_VERSION = "bedrock-2023-05-31"


def split_region(name: str) -> tuple[str, str | None]:
    """`anthropic.claude-…-v1:0@eu-central-1` → (`anthropic.claude-…-v1:0`, `eu-central-1`)."""
    base, sep, suffix = name.rpartition("@")
    if sep and _REGION.match(suffix):
        return base, suffix
    return name, None


# (url, host, path) of one operation on one model.
_Target = tuple[str, str, str]


class _Error(msgspec.Struct):
    message: str | None = None
    Message: str | None = None
    type: str | None = msgspec.field(default=None, name="__type")


_error_decoder = msgspec.json.Decoder(_Error)

# Bedrock's exception name → (status for the client, status that decides retries, error type, code).
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors
_ERRORS: dict[str, tuple[int, int, str, str]] = {
    "ThrottlingException": (429, 429, "rate_limit_error", "upstream_rate_limited"),
    "ServiceQuotaExceededException": (429, 429, "rate_limit_error", "upstream_rate_limited"),
    "ServiceUnavailableException": (503, 503, "overloaded_error", "upstream_overloaded"),
    "ModelNotReadyException": (503, 503, "overloaded_error", "upstream_overloaded"),
    "ValidationException": (400, 400, "invalid_request_error", "upstream_invalid_request"),
    "AccessDeniedException": (502, 403, "api_error", "upstream_auth_failed"),
    "UnrecognizedClientException": (502, 403, "api_error", "upstream_auth_failed"),
    "ResourceNotFoundException": (404, 404, "not_found_error", "upstream_not_found"),
    "ModelTimeoutException": (504, 504, "api_error", "upstream_timeout"),
    "ModelErrorException": (502, 502, "api_error", "upstream_error"),
    "ModelStreamErrorException": (502, 502, "api_error", "upstream_error"),
    "InternalServerException": (502, 500, "api_error", "upstream_error"),
}


def _error_type(header: str | None, body: bytes) -> tuple[str | None, str | None]:
    """(exception name, message) from `x-amzn-ErrorType` (`Name:uri`) or the body's `__type` (`ns#Name`)."""
    try:
        parsed = _error_decoder.decode(body)
    except msgspec.DecodeError:
        parsed = _Error()
    name = header or parsed.type
    if name:
        name = name.split(":", 1)[0].rsplit("#", 1)[-1]
    message = parsed.message or parsed.Message
    return name, message[:500] if message else None


class _Credentials:
    """Where the provider's credentials come from: config first, then the standard AWS environment variables."""

    def __init__(self, config: ProviderConfig) -> None:
        env = os.environ.get
        self.bearer = config.api_key or env("AWS_BEARER_TOKEN_BEDROCK") or None
        access = config.aws_access_key_id or env("AWS_ACCESS_KEY_ID")
        secret = config.aws_secret_access_key or env("AWS_SECRET_ACCESS_KEY")
        token = config.aws_session_token or env("AWS_SESSION_TOKEN")
        self.keys = Credentials(access, secret, token or None) if access and secret else None
        self.region = config.region or env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1"


class _StreamResponse:
    """A ConverseStream (or InvokeModelWithResponseStream) response as the stream loop reads it: `read_chunk`
    yields Messages SSE bytes."""

    def __init__(self, response: Response, model_id: str, provider: str, invoke: bool = False) -> None:
        self._response = response
        self.status = response.status
        # InvokeModel streams carry Anthropic's own events (decoded here); Converse streams are translated in Rust.
        self._decoder: EventStreamDecoder | None = None
        self._translator: ConverseStreamTranslator | None = None
        if invoke:
            self._decoder = EventStreamDecoder(MAX_EVENT_BYTES)
            self.read_chunk = self._read_invoke
        else:
            message_id = f"msg_bdrk_{os.urandom(12).hex()}"
            self._translator = ConverseStreamTranslator(model_id, message_id, MAX_EVENT_BYTES)
            self.read_chunk = self._read_converse
        self._provider = provider
        self.body_reader = self

    def get_header(self, name: str) -> str | None:
        return self._response.get_header(name)

    async def bytes(self) -> builtins.bytes:
        return _normalized_error(self._response, builtins.bytes(await self._response.bytes()))

    async def _read_converse(self) -> builtins.bytes | None:
        # Once per upstream chunk: one read, one copy into bytes, one Rust call and one exception check.
        translator = self._translator
        assert translator is not None
        read = self._response.body_reader.read_chunk
        while True:
            chunk = await read()
            try:
                if chunk is None:
                    translator.finish()
                    return None
                out = translator.feed(builtins.bytes(chunk))
            except EventStreamError as exc:
                raise self._broken(exc) from None
            exception = translator.take_exception()
            if exception is not None:
                out += self._exception(*exception)
            if out:
                return out

    async def _read_invoke(self) -> builtins.bytes | None:
        decoder = self._decoder
        assert decoder is not None
        read = self._response.body_reader.read_chunk
        while True:
            chunk = await read()
            try:
                if chunk is None:
                    decoder.finish()
                    return None
                out = self._invoke(builtins.bytes(chunk))
            except EventStreamError as exc:
                raise self._broken(exc) from None
            if out:
                return out

    def _invoke(self, chunk: builtins.bytes) -> builtins.bytes:
        assert self._decoder is not None
        out = b""
        for message_type, kind, payload in self._decoder.feed_events(chunk):
            if message_type == "event":
                out += self._invoke_chunk(payload)
            else:
                out += self._exception(kind, payload)
        return out

    def _exception(self, kind: str | None, payload: builtins.bytes) -> builtins.bytes:
        """An exception mid-stream (throttlingException, modelStreamErrorException, …): the caller's stream ends
        with an error event in its own format."""
        name = (kind or "InternalServerException")[:1].upper() + (kind or "")[1:]
        _, message_text = _error_type(None, payload)
        _, _, error_type, _ = _ERRORS.get(name, _ERRORS["InternalServerException"])
        said = f": {message_text}" if message_text else ""
        message = f"Upstream provider '{self._provider}' failed ({name}){said}"
        return sse_event("error", {"error": {"type": error_type, "message": message}})

    def _invoke_chunk(self, payload: builtins.bytes) -> builtins.bytes:
        """`{"bytes": base64(Anthropic event JSON)}` → that event as SSE."""
        try:
            raw = base64.b64decode(msgspec.json.decode(payload)["bytes"])
            kind = msgspec.json.decode(raw)["type"]
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            raise UpstreamError(
                f"Upstream provider '{self._provider}' sent a malformed stream event.", code="upstream_invalid_stream"
            ) from None
        return b"event: " + str(kind).encode() + b"\ndata: " + raw + b"\n\n"

    def _broken(self, exc: EventStreamError) -> UpstreamError:
        return UpstreamError(
            f"Upstream provider '{self._provider}' sent a malformed event stream ({exc}).",
            code="upstream_invalid_stream",
        )


def _normalized_error(response: Response, body: bytes) -> bytes:
    """The error body with the exception name from the `x-amzn-ErrorType` header folded in."""
    name, message = _error_type(response.get_header("x-amzn-errortype"), body)
    return msgspec.json.encode({"__type": name, "message": message})


class BedrockProvider(OpenAICompatProvider):
    fetches_media = True

    api = "messages"

    def __init__(self, name: str, config: ProviderConfig, timeouts: Timeouts) -> None:
        super().__init__(name, config, timeouts)
        self._base = (config.base_url or DEFAULT_ENDPOINT).rstrip("/")
        self._credentials = _Credentials(config)
        self._signers: dict[str, SigV4Signer] = {}
        self._invoke = config.bedrock_api == "invoke"
        # url → per model, built once: (region, model id, (url, host, path) unary, (url, host, path) streamed).
        self._targets: dict[str, tuple[str, str, _Target, _Target]] = {}

    def default_headers(self) -> dict[str, str]:
        # Credentials are per request (SigV4 signs each one), never a default header.
        return {"content-type": "application/json", "accept": "application/json", **self.config.headers}

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """A Bedrock API key (organisation BYOK or `api_key`) is a bearer token and replaces SigV4."""
        return {"authorization": f"Bearer {api_key}"}

    def region_of(self, upstream_model: str) -> str:
        return split_region(upstream_model)[1] or self._credentials.region

    def url(self, endpoint: str, upstream_model: str) -> str:
        model_id, region = split_region(upstream_model)
        region = region or self._credentials.region
        base = self._base.replace("{region}", region)
        operation = "converse"
        if self.config.bedrock_api == "invoke":
            if not is_anthropic(model_id):
                raise ConfigError(
                    f"providers.{self.name}.bedrock_api: invoke serves Anthropic models only, not {model_id!r} "
                    "(use converse)"
                )
            operation = "invoke"
        url = f"{base}/model/{quote(model_id, safe='')}/{operation}"
        parts = urlsplit(url)
        suffix = "-with-response-stream" if operation == "invoke" else "-stream"
        unary = (url, parts.netloc, parts.path)
        streamed = (url + suffix, parts.netloc, parts.path + suffix)
        self._targets[url] = (region, model_id, unary, streamed)
        return url

    def _signer(self, region: str) -> SigV4Signer:
        signer = self._signers.get(region)
        if signer is None:
            assert self._credentials.keys is not None
            signer = self._signers[region] = SigV4Signer(self._credentials.keys, region, SERVICE)
        return signer

    def _prepare(
        self, url: str, body: bytes, stream: bool, extra: dict[str, str] | None, request_id: str
    ) -> tuple[str, bytes, dict[str, str], str]:
        region, model_id, unary, streamed = self._targets[url]
        url, host, path = streamed if stream else unary
        try:
            request: Any = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise InvalidRequest("The request body is not valid JSON.") from None
        if self._invoke:
            # Anthropic's own body: the model is in the URL, the version is Bedrock's.
            request.pop("model", None)
            request.pop("stream", None)
            request["anthropic_version"] = INVOKE_ANTHROPIC_VERSION
            converse = msgspec.json.encode(request)
        else:
            converse = msgspec.json.encode(messages_to_converse(request, model_id))
        headers = {"x-request-id": request_id}
        bearer = (extra or {}).get("authorization")
        if bearer is None and self._credentials.bearer:
            bearer = f"Bearer {self._credentials.bearer}"
        if bearer is not None:
            headers["authorization"] = bearer
        elif self._credentials.keys is not None:
            headers.update(
                self._signer(region).sign("POST", host, path, "", [("content-type", "application/json")], converse)
            )
        else:
            raise UpstreamError(
                f"Upstream provider '{self.name}' has no AWS credentials (set aws_access_key_id and "
                "aws_secret_access_key, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a Bedrock API key).",
                code="upstream_auth_failed",
            )
        if stream:
            headers["accept"] = "application/vnd.amazon.eventstream"
        return url, converse, headers, model_id

    async def post(
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> tuple[Response, bytes]:
        assert self._transport is not None
        target, converse, headers, model_id = self._prepare(url, await self.with_media(body), False, extra, request_id)
        response, data = await self._transport.post(target, headers, converse)
        if response.status != 200:
            return response, _normalized_error(response, data)
        if self._invoke:
            return response, data  # already an Anthropic Messages answer
        try:
            reply = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return response, data  # the caller reports the invalid JSON
        message_id = f"msg_bdrk_{(response.get_header('x-amzn-requestid') or os.urandom(12).hex())[:36]}"
        return response, msgspec.json.encode(converse_to_messages(reply, model_id, message_id))

    @asynccontextmanager
    async def stream(  # type: ignore[override]
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> AsyncIterator[_StreamResponse]:
        assert self._transport is not None
        target, converse, headers, model_id = self._prepare(url, await self.with_media(body), True, extra, request_id)
        async with self._transport.stream(target, headers, converse) as response:
            yield _StreamResponse(response, model_id, self.name, self._invoke)

    def error_from_status(self, status: int, body: bytes, retry_after: str | None) -> GatewayError:
        name, message = _error_type(None, body)
        mapped = _ERRORS.get(name or "")
        if mapped is None:
            return super().error_from_status(status, body, retry_after)
        client_status, upstream_status, error_type, code = mapped
        said = f": {message}" if message else ""
        text = f"Upstream provider '{self.name}' answered {name}{said}"
        error: GatewayError
        if client_status == 400:
            error = InvalidRequest(text, code=code)
        elif client_status == 404:
            error = NotFound(text, code=code)
        elif client_status in (429, 503):
            headers = [("retry-after", retry_after)] if retry_after else []
            error = GatewayError(text, status=client_status, type=error_type, code=code, headers=headers)
        else:
            error = UpstreamError(text, code=code, status=client_status)
        error.upstream_status = upstream_status
        error.retry_after = retry_after
        return error
