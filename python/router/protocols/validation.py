"""Decoding a request body into its msgspec shape, with errors that name the parameter at fault.

Every body is checked whole before it is decoded (`check_json`): valid UTF-8 everywhere (also inside fields the
gateway forwards without decoding, which an upstream would refuse or, worse, mangle) and nesting at most
`MAX_JSON_DEPTH` levels deep (msgspec and the guardrail walk recurse per level, and Python's recursion limit is not
an error a client should meet as a 500).
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from .._core import json_fault
from ..errors import InvalidRequest

T = TypeVar("T")

# Deepest nesting of objects and arrays a request body may have. Real requests (JSON schemas of tools included)
# stay far below; msgspec, the guardrail walk and Python's recursion limit all hold far above.
MAX_JSON_DEPTH = 128


def check_json(body: bytes) -> None:
    """Refuse (400) a body that is not UTF-8 or nests deeper than `MAX_JSON_DEPTH`, naming the byte offset.

    A syntax error is left to the decoder, whose message says what was expected (it stops at the same place)."""
    fault = json_fault(body, MAX_JSON_DEPTH)
    if fault is None:
        return
    kind, at = fault
    if kind == "utf8":
        raise InvalidRequest(
            f"The request body is not valid JSON: invalid UTF-8 at byte {at}.", code="invalid_json"
        ) from None
    if kind == "depth":
        raise InvalidRequest(
            f"The request body nests objects and arrays more than {MAX_JSON_DEPTH} levels deep (at byte {at}).",
            code="json_too_deep",
        ) from None


def invalid_json(exc: Exception, at: str = "The request body") -> InvalidRequest:
    return InvalidRequest(f"{at} is not valid JSON: {exc}.", code="invalid_json")


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
    except msgspec.DecodeError as exc:
        # Bodies reach here after `check_json`; this holds for a decoder used on its own.
        raise invalid_json(exc) from None
    except RecursionError:
        raise InvalidRequest(
            f"The request body nests objects and arrays more than {MAX_JSON_DEPTH} levels deep.", code="json_too_deep"
        ) from None
