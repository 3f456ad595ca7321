"""OpenAI Embeddings: request shape and deterministic unit vectors derived from a hash of each input."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

import msgspec

from .content import prompt_tokens
from .knobs import Knobs

DEFAULT_DIMENSIONS = 8
# Large enough for every real OpenAI embedding model, small enough that one request cannot eat the worker.
MAX_DIMENSIONS = 8192
MAX_INPUTS = 2048


class EmbeddingRequest(msgspec.Struct):
    model: str
    # Any: OpenAI accepts str | list[str] | list[int] | list[list[int]], a union msgspec cannot express.
    input: Any = None
    dimensions: int | None = None
    encoding_format: str | None = None
    mock: Knobs | None = None


REQUEST_DECODER = msgspec.json.Decoder(EmbeddingRequest)


class EmbeddingInputError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class Embedding(msgspec.Struct, kw_only=True):
    object: str = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


def _is_token_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(t) is int for t in value)


def normalize_inputs(value: Any) -> list[tuple[bytes, int]]:
    """Each input as (hash key, token count); raises EmbeddingInputError on shapes OpenAI would reject."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif _is_token_list(value):
        items = [value]
    elif isinstance(value, list) and value:
        items = value
    else:
        raise EmbeddingInputError("'input' must be a non-empty string, array of strings or array of tokens", "input")
    if len(items) > MAX_INPUTS:
        raise EmbeddingInputError(f"'input' must have at most {MAX_INPUTS} items", "input")
    out = []
    for item in items:
        if isinstance(item, str) and item:
            out.append((b"s" + item.encode(), prompt_tokens(len(item))))
        elif _is_token_list(item):
            # A distinct prefix so the text "1" and the token list [1] do not share a vector.
            out.append((b"t" + ",".join(map(str, item)).encode(), len(item)))
        else:
            raise EmbeddingInputError("each 'input' item must be a non-empty string or array of tokens", "input")
    return out


def vector(key: bytes, dimensions: int) -> list[float]:
    """A unit vector determined by ``key``, rounded to float32 so float and base64 encodings agree exactly."""
    raw = struct.unpack(f"<{dimensions}I", hashlib.shake_256(key).digest(4 * dimensions))
    values = [v / 2147483648.0 - 1.0 for v in raw]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dimensions}f", packed))


def embeddings_body(request: EmbeddingRequest, model: str) -> bytes:
    dimensions = DEFAULT_DIMENSIONS if request.dimensions is None else request.dimensions
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise EmbeddingInputError(f"'dimensions' must be between 1 and {MAX_DIMENSIONS}", "dimensions")
    encoding = request.encoding_format or "float"
    if encoding not in ("float", "base64"):
        raise EmbeddingInputError("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    inputs = normalize_inputs(request.input)
    data = []
    for index, (key, _tokens) in enumerate(inputs):
        values = vector(key, dimensions)
        if encoding == "base64":
            # OpenAI's base64 format: little-endian float32, which is what the SDK decodes.
            packed = struct.pack(f"<{dimensions}f", *values)
            data.append(Embedding(index=index, embedding=base64.b64encode(packed).decode()))
        else:
            data.append(Embedding(index=index, embedding=values))
    total = sum(tokens for _key, tokens in inputs)
    return msgspec.json.encode(EmbeddingList(data=data, model=model, usage=EmbeddingUsage(total, total)))
