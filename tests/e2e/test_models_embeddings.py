from __future__ import annotations

import openai

from router.config import DEFAULT_CONFIG, load_config


def test_models_list_matches_catalog_with_metadata(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    config = load_config(DEFAULT_CONFIG)
    # The catalog, and the demo's routing policies (listed as models a key may use).
    assert set(models) == {m.id for m in config.models} | {f"policy/{p.name}" for p in config.policies}
    gpt = models["mock/gpt-4o"].model_extra
    assert gpt["provider"] == "mock" and gpt["region"] == "us" and gpt["zdr"] is False
    assert gpt["context_window"] == 128000
    assert gpt["pricing"] == {
        "input": 2.5,
        "output": 10.0,
        "cached_input": 1.25,
        "cache_write": None,
        "per_request": 0.0,
    }
    assert "tools" in gpt["capabilities"]
    assert models["mock/gpt-4o-mini"].model_extra["zdr"] is True
    assert models["mock/gpt-4o"].owned_by == "mock"


def test_embeddings_float_and_base64(client: openai.OpenAI, mock) -> None:
    # The SDK asks for base64 by default and decodes it; ask for floats explicitly too.
    encoded = client.embeddings.create(model="mock/text-embedding-3-small", input=["alpha", "beta"])
    floats = client.embeddings.create(
        model="mock/text-embedding-3-small", input=["alpha", "beta"], encoding_format="float", dimensions=8
    )
    assert [d.index for d in encoded.data] == [0, 1]
    assert len(floats.data[0].embedding) == 8
    for a, b in zip(encoded.data, floats.data, strict=True):
        assert max(abs(x - y) for x, y in zip(a.embedding, b.embedding, strict=True)) < 1e-6
    assert encoded.usage.prompt_tokens > 0
    assert [r["model"] for r in mock.requests()] == ["text-embedding-3-small"] * 2


def test_chat_model_on_embeddings_endpoint_is_refused(client: openai.OpenAI, mock) -> None:
    try:
        client.embeddings.create(model="mock/gpt-4o", input="x")
    except openai.BadRequestError as exc:
        assert exc.code == "model_not_supported"
    else:
        raise AssertionError("expected BadRequestError")
    assert mock.count() == 0
