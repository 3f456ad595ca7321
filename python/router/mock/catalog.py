"""The models the mock advertises on ``GET /v1/models``.

Advertising only: chat and embeddings serve any model name, since the gateway enforces its own catalog.
"""

from __future__ import annotations

import msgspec

# A fixed timestamp keeps the listing byte-identical across runs.
_CREATED = 1_700_000_000


class Model(msgspec.Struct):
    id: str
    object: str = "model"
    created: int = _CREATED
    owned_by: str = "router-mock"


class ModelList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Model]


MODELS: tuple[Model, ...] = tuple(
    Model(id=name)
    for name in (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "o3-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
    )
)


def find_model(model_id: str) -> Model | None:
    return next((m for m in MODELS if m.id == model_id), None)


def model_list_body() -> bytes:
    return msgspec.json.encode(ModelList(data=list(MODELS)))


def model_body(model: Model) -> bytes:
    return msgspec.json.encode(model)
