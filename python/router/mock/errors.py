"""Error bodies for faults and bad input, in each API's own shape.

OpenAI: ``{"error": {"message", "type", "param", "code"}}``;
Anthropic: ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

from types import MappingProxyType

import msgspec


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


def openai_error(
    message: str, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> bytes:
    return msgspec.json.encode(ErrorBody(ErrorDetail(message=message, type=type, param=param, code=code)))


# The injected HTTP failures, with the messages OpenAI itself sends for them.
FAULT_RESPONSES: MappingProxyType[str, tuple[int, bytes]] = MappingProxyType(
    {
        "400": (
            400,
            openai_error("Invalid request (mock): the upstream rejected this request.", code="invalid_value"),
        ),
        "401": (
            401,
            openai_error(
                "Incorrect API key provided (mock). You can find your API key in your account settings.",
                code="invalid_api_key",
            ),
        ),
        "403": (
            403,
            openai_error(
                "You have insufficient permissions for this operation (mock).",
                type="permission_error",
                code="insufficient_permissions",
            ),
        ),
        "429": (
            429,
            openai_error(
                "Rate limit reached for requests (mock). Please try again later.",
                type="rate_limit_error",
                code="rate_limit_exceeded",
            ),
        ),
        "500": (
            500,
            openai_error(
                "The server had an error while processing your request. Sorry about that! (mock)",
                type="server_error",
            ),
        ),
        "503": (
            503,
            openai_error(
                "The engine is currently overloaded, please try again later. (mock)",
                type="server_error",
                code="service_unavailable",
            ),
        ),
        "529": (529, openai_error("Overloaded (mock)", type="server_error", code="overloaded")),
    }
)


class AnthropicErrorDetail(msgspec.Struct):
    type: str
    message: str


class AnthropicErrorBody(msgspec.Struct, tag_field="type", tag="error"):
    error: AnthropicErrorDetail


def anthropic_error(message: str, type: str = "invalid_request_error") -> bytes:
    return msgspec.json.encode(AnthropicErrorBody(AnthropicErrorDetail(type=type, message=message)))


# The same faults as Anthropic answers them; its "overloaded" status is 529.
ANTHROPIC_FAULT_RESPONSES: MappingProxyType[str, tuple[int, bytes]] = MappingProxyType(
    {
        "400": (400, anthropic_error("Invalid request (mock): the upstream rejected this request.")),
        "401": (401, anthropic_error("invalid x-api-key (mock)", "authentication_error")),
        "403": (
            403,
            anthropic_error("Your API key does not have permission to use this resource (mock).", "permission_error"),
        ),
        "429": (429, anthropic_error("Number of requests has exceeded your rate limit (mock).", "rate_limit_error")),
        "500": (500, anthropic_error("Internal server error (mock)", "api_error")),
        "503": (503, anthropic_error("Service unavailable (mock)", "api_error")),
        "529": (529, anthropic_error("Overloaded (mock)", "overloaded_error")),
    }
)
