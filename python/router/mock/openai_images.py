"""OpenAI Images (`POST /v1/images/generations`): request shape and deterministic small PNGs.

https://platform.openai.com/docs/api-reference/images/create — gpt-image models answer `b64_json` with token
usage; DALL-E models answer a `url` unless `response_format: b64_json`. Each image is a real PNG (8x8, one colour
derived from the prompt and the image's index), so clients can decode what they get.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

import msgspec

from .content import prompt_tokens
from .knobs import Knobs

SIZES = ("auto", "256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792")
MAX_N = 10
# Output tokens a gpt-image-1 image takes at each quality (1024x1024; OpenAI's image generation guide).
_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "auto": 1056}
URL_BASE = "https://images.mock.invalid/"


class ImagesRequest(msgspec.Struct):
    model: str
    prompt: str
    n: int = 1
    size: str = "auto"
    quality: str = "auto"
    response_format: str | None = None
    background: str | None = None
    output_format: str | None = None
    mock: Knobs | None = None


REQUEST_DECODER = msgspec.json.Decoder(ImagesRequest)


class ImagesInputError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def png(seed: bytes, side: int = 8) -> bytes:
    """A valid `side`x`side` RGB PNG of one colour taken from `seed`."""
    colour = hashlib.sha256(seed).digest()[:3]
    rows = b"".join(b"\x00" + colour * side for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def image_b64(prompt: str, index: int) -> str:
    return base64.b64encode(png(f"{prompt}\x00{index}".encode())).decode()


def images_body(request: ImagesRequest, model: str, created: int) -> bytes:
    if not 1 <= request.n <= MAX_N:
        raise ImagesInputError(f"Invalid 'n': must be between 1 and {MAX_N}.", "n")
    if request.size not in SIZES:
        raise ImagesInputError(f"Invalid 'size': '{request.size}' is not one of {', '.join(SIZES)}.", "size")
    if not request.prompt:
        raise ImagesInputError("Invalid 'prompt': must not be empty.", "prompt")
    gpt_image = model.startswith("gpt-image")
    if gpt_image and request.response_format == "url":
        raise ImagesInputError("Unknown parameter: 'response_format'.", "response_format")
    as_url = not gpt_image and request.response_format != "b64_json"
    data = []
    for i in range(request.n):
        if as_url:
            digest = hashlib.sha256(f"{request.prompt}\x00{i}".encode()).hexdigest()[:24]
            data.append({"url": f"{URL_BASE}{digest}.png", "revised_prompt": request.prompt})
        else:
            data.append({"b64_json": image_b64(request.prompt, i)})
    body: dict = {"created": created, "data": data}
    if gpt_image:
        prompt = prompt_tokens(len(request.prompt))
        output = _TOKENS.get(request.quality, _TOKENS["auto"]) * request.n
        body |= {
            "background": request.background or "opaque",
            "output_format": request.output_format or "png",
            "quality": "medium" if request.quality == "auto" else request.quality,
            "size": "1024x1024" if request.size == "auto" else request.size,
            "usage": {
                "input_tokens": prompt,
                "output_tokens": output,
                "total_tokens": prompt + output,
                "input_tokens_details": {"text_tokens": prompt, "image_tokens": 0},
            },
        }
    return msgspec.json.encode(body)
