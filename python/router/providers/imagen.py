"""Imagen (`imagen-…` models) for `POST /v1/images/generations`: the `:predict` method, on Vertex AI and on the
Gemini API alike.

Request `{"instances": [{"prompt"}], "parameters": {"sampleCount", "aspectRatio", "outputOptions", …}}`, answer
`{"predictions": [{"bytesBase64Encoded", "mimeType"} | {"raiFilteredReason"}]}`:

- https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api (parameters, predictions)
- https://cloud.google.com/vertex-ai/generative-ai/docs/image/configure-aspect-ratio (1:1, 3:4, 4:3, 9:16, 16:9)
- https://docs.cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/Shared.Types/OutputOptions
  (`image/png` or `image/jpeg`; Vertex only)
- https://cloud.google.com/vertex-ai/generative-ai/docs/image/set-output-resolution (`sampleImageSize` 1K/2K)
- https://ai.google.dev/gemini-api/docs/imagen (the same body on `models/{model}:predict` with an API key)

OpenAI's fields map as: `n` → `sampleCount` (at most 4 per call: more are split over concurrent calls), `size` →
`aspectRatio` (a size with no Imagen aspect ratio is refused), `quality` `high`/`hd` → `sampleImageSize: 2K`,
`output_format` → `outputOptions.mimeType`. Imagen hosts no images: `response_format: url` gets `data:` URLs,
as the Gemini image models do.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import InvalidRequest

__all__ = ["MAX_SAMPLES", "aspect_ratio", "is_imagen", "predict_bodies", "read_predictions"]

# Images one `:predict` call returns at most.
MAX_SAMPLES = 4
# OpenAI Images sizes → Imagen's aspect ratios. 1536x1024 and 1024x1536 (3:2, 2:3) have none.
_ASPECT = {
    "256x256": "1:1",
    "512x512": "1:1",
    "1024x1024": "1:1",
    "1792x1024": "16:9",
    "1024x1792": "9:16",
}
_SUPPORTED_RATIOS = "1:1, 3:4, 4:3, 9:16, 16:9"
_MIME = {"png": "image/png", "jpeg": "image/jpeg"}


def is_imagen(model: str) -> bool:
    return model.rpartition("/")[2].startswith("imagen")


def aspect_ratio(model: str, size: str | None) -> str | None:
    """Imagen's `aspectRatio` for an OpenAI `size` (None: the model's default, 1:1)."""
    if size in (None, "auto"):
        return None
    ratio = _ASPECT.get(size)
    if ratio is None:
        raise InvalidRequest(
            f"Invalid 'size': '{size}' has no aspect ratio the model '{model}' can generate (Imagen takes "
            f"{_SUPPORTED_RATIOS}: sizes 1024x1024, 1792x1024, 1024x1792 or 'auto').",
            param="size",
            code="unsupported_value",
        )
    return ratio


class _Prediction(msgspec.Struct):
    bytesBase64Encoded: str | None = None
    mimeType: str = "image/png"
    raiFilteredReason: str | None = None


class _PredictReply(msgspec.Struct):
    predictions: list[_Prediction] = []


_reply = msgspec.json.Decoder(_PredictReply)


def predict_bodies(model: str, options: dict[str, Any], output_options: bool) -> list[bytes]:
    """The `:predict` bodies for an OpenAI Images request, one per call (`n` over calls of at most 4 images).
    `output_options`: the endpoint takes `outputOptions` (Vertex AI; the Gemini API returns PNG only)."""
    if options.get("background") == "transparent":
        raise InvalidRequest(
            f"The model '{model}' cannot make transparent backgrounds; use 'auto' or 'opaque'.",
            param="background",
            code="unsupported_value",
        )
    output_format = options.get("output_format")
    if output_format not in (None, *(_MIME if output_options else ("png",))):
        accepted = "'png' or 'jpeg'" if output_options else "'png'"
        raise InvalidRequest(
            f"The model '{model}' cannot return '{output_format}' images; set 'output_format' to {accepted}.",
            param="output_format",
            code="unsupported_value",
        )
    if not isinstance(options.get("prompt"), str):
        raise InvalidRequest("Invalid 'prompt': expected a string.", param="prompt", code="invalid_value")
    parameters: dict[str, Any] = {"includeRaiReason": True}
    ratio = aspect_ratio(model, options.get("size"))
    if ratio is not None:
        parameters["aspectRatio"] = ratio
    if options.get("quality") in ("high", "hd"):
        parameters["sampleImageSize"] = "2K"
    if output_format is not None and output_options:
        parameters["outputOptions"] = {"mimeType": _MIME[output_format]}
        if output_format == "jpeg" and isinstance(options.get("output_compression"), int):
            parameters["outputOptions"]["compressionQuality"] = options["output_compression"]
    n = options.get("n") or 1
    bodies = []
    while n > 0:
        count = min(n, MAX_SAMPLES)
        body = {"instances": [{"prompt": options["prompt"]}], "parameters": {**parameters, "sampleCount": count}}
        bodies.append(msgspec.json.encode(body))
        n -= count
    return bodies


def read_predictions(data: bytes, as_url: bool) -> tuple[list[dict[str, str]], str | None]:
    """(OpenAI `data` entries, the reason Google's filters withheld images, if any). Raises msgspec.DecodeError
    for a body that is not a predict answer."""
    reply = _reply.decode(data)
    images: list[dict[str, str]] = []
    filtered = None
    for prediction in reply.predictions:
        if prediction.bytesBase64Encoded:
            if as_url:
                images.append({"url": f"data:{prediction.mimeType};base64,{prediction.bytesBase64Encoded}"})
            else:
                images.append({"b64_json": prediction.bytesBase64Encoded})
        elif prediction.raiFilteredReason:
            filtered = prediction.raiFilteredReason
    return images, filtered
