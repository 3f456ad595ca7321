"""Error bodies in the caller's API shape, for any GatewayError.

OpenAI: ``{"error": {"message", "type", "param", "code"}}`` with the error's own status.
Anthropic: ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with Anthropic's status/type pairs
(overloaded is 529 there, where OpenAI callers get 503).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ..errors import GatewayError

Api = Literal["openai", "anthropic"]

# Anthropic's error type for each status it documents; anything else 5xx is api_error.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class _OpenAIDetail(msgspec.Struct, omit_defaults=False):
    message: str
    type: str
    param: str | None
    code: str | None


class _OpenAIBody(msgspec.Struct):
    error: _OpenAIDetail


class _AnthropicDetail(msgspec.Struct):
    type: str
    message: str


class _AnthropicBody(msgspec.Struct, tag_field="type", tag="error"):
    error: _AnthropicDetail
    request_id: str | None = None


def error_status(err: GatewayError, api: Api = "openai") -> int:
    if err.type == "overloaded_error":
        return 529 if api == "anthropic" else 503
    return err.status


def anthropic_error_type(err: GatewayError) -> str:
    if err.type == "overloaded_error":
        return "overloaded_error"
    status = err.status
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_body(err: GatewayError, api: Api = "openai", request_id: str | None = None) -> bytes:
    if api == "anthropic":
        return msgspec.json.encode(_AnthropicBody(_AnthropicDetail(anthropic_error_type(err), err.message), request_id))
    return msgspec.json.encode(_OpenAIBody(_OpenAIDetail(err.message, err.type, err.param, err.code)))
