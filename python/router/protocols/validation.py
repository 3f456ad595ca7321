"""Decoding a request body into its msgspec shape, with errors that name the parameter at fault."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from ..errors import InvalidRequest

T = TypeVar("T")


def validate(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, sep, where = text.rpartition(" - at `$")
        if not sep:
            message, where = text, ""
        param = where.rstrip("`").lstrip(".") or None
        if message.startswith("Object missing required field"):
            field = message.rpartition("`")[0].rpartition("`")[2]
            param = f"{param}.{field}" if param else field
            raise InvalidRequest(
                f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
            ) from None
        target = f"Invalid value for '{param}': " if param else "Invalid request: "
        raise InvalidRequest(target + message.replace("`", "'") + ".", param=param, code="invalid_type") from None
