"""The gateway's error tree.

GatewayError                 an error answered to the client in the endpoint's API shape
 ├─ InvalidRequest            400 invalid_request_error (bad JSON, wrong types, missing fields)
 ├─ Unauthorized              401 authentication_error (missing, malformed, unknown or revoked key)
 ├─ PermissionDenied          403 permission_error
 ├─ NotFound                  404 not_found_error (unknown route or model)
 ├─ Conflict                  409 conflict_error (the change clashes with the current state)
 ├─ PayloadTooLarge           413 request_too_large
 ├─ UnsupportedMediaType      415 invalid_request_error
 ├─ GuardrailViolation        400 guardrail_violation (a blocked category was found; names it, never the value)
 ├─ GuardrailUnavailable      503 guardrail_unavailable (scanning failed: fail closed, nothing is forwarded)
 ├─ DatabaseUnavailable       503 database_unavailable (the PostgreSQL server cannot be reached)
 └─ UpstreamError             an upstream failure mapped to the client's status (429, 502, 503, 504)
ConfigError                  a configuration file that cannot be used (raised at start-up, never per request)
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    type = "api_error"
    # Set on errors made from an upstream answer: its HTTP status and retry-after header (routing retries on them).
    upstream_status: int | None = None
    retry_after: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.headers = headers or []


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"


class Conflict(GatewayError):
    status = 409
    type = "conflict_error"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "request_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"


class GuardrailViolation(GatewayError):
    status = 400
    type = "invalid_request_error"


class GuardrailUnavailable(GatewayError):
    status = 503
    type = "api_error"


class DatabaseUnavailable(GatewayError):
    status = 503
    type = "api_error"

    def __init__(self, message: str = "The database is unavailable; try again shortly.") -> None:
        super().__init__(message, code="database_unavailable")


class UpstreamError(GatewayError):
    status = 502
    type = "upstream_error"


class ConfigError(Exception):
    """A configuration problem, with the file and key path it concerns."""
