"""The model catalog: every model the gateway can serve, keyed by its public `provider/model` id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ..config import Config, ModelConfig, Prices
from ..protocols import coding
from ..providers import OpenAICompatProvider, make_provider
from ..spend.cost import load_prices, price_for


class ModelInfo(msgspec.Struct, omit_defaults=False):
    """One entry of `GET /v1/models`: the OpenAI fields plus the metadata tools and governance need."""

    id: str
    created: int
    owned_by: str
    provider: str
    upstream_model: str
    region: str
    zdr: bool
    context_window: int | None
    max_output_tokens: int | None
    capabilities: list[str]
    pricing: dict[str, Any] | None
    object: str = "model"
    description: str | None = None
    # Only in `?view=all`: whether the caller may use the model.
    usable: bool | msgspec.UnsetType = msgspec.UNSET


class Model:
    """A servable model with everything the hot path needs precomputed."""

    __slots__ = (
        "coding", "config", "endpoints", "id", "prices", "provider", "upstream_name", "upstream_name_json", "urls",
    )  # fmt: skip

    def __init__(self, config: ModelConfig, provider: OpenAICompatProvider, shipped: Mapping[str, Prices]) -> None:
        self.id = config.id
        self.provider = provider
        self.upstream_name = config.upstream_model or config.id.partition("/")[2]
        # Native providers know where a model runs (Bedrock's `@<region>`): catalog metadata the EU presets read.
        region_of = getattr(provider, "region_of", None)
        if region_of is not None and config.region == "global":
            config = msgspec.structs.replace(config, region=region_of(self.upstream_name))
        self.config = config
        # A `coding/` model: the family of reasoning model whose refused parameters it fixes; None otherwise.
        self.coding = coding.family(self.upstream_name) if config.id.startswith(coding.PREFIX) else None
        # None: no price anywhere; keys with a spend limit are refused for this model.
        price_key = getattr(provider, "price_key", None)  # Vertex: `google/gemini-2.5-pro` is priced as its model
        name = price_key(self.upstream_name) if price_key is not None else self.upstream_name
        self.prices = price_for(config.prices, name.partition("@")[0], shipped)
        # The request body is forwarded with only this value swapped in, pre-encoded once here.
        self.upstream_name_json = msgspec.Raw(msgspec.json.encode(self.upstream_name))
        self.endpoints = endpoints_of(config.capabilities, provider.chat_images)
        urls = ("chat", "embeddings", "images") if "images" in self.endpoints else ("chat", "embeddings")
        self.urls = {endpoint: provider.url(endpoint, self.upstream_name) for endpoint in urls}

    @property
    def is_embedding(self) -> bool:
        return "embeddings" in self.config.capabilities

    def info(self, created: int) -> ModelInfo:
        c = self.config
        return ModelInfo(
            id=c.id,
            created=created,
            owned_by=self.provider.name,
            provider=self.provider.name,
            upstream_model=self.upstream_name,
            region=c.region,
            zdr=c.zdr,
            context_window=c.context_window,
            max_output_tokens=c.max_output_tokens,
            capabilities=list(c.capabilities),
            pricing=None if self.prices is None else pricing(self.prices),
            description=c.description,
        )


def pricing(prices: Prices) -> dict[str, Any]:
    """A model's prices as `GET /v1/models` shows them: per-image and per-search prices only where they apply."""
    shown = msgspec.structs.asdict(prices)
    if not prices.images:
        del shown["images"]
    if not prices.per_search:
        del shown["per_search"]
    return shown


def endpoints_of(capabilities: list[str], chat_images: bool) -> frozenset[str]:
    """The kinds of endpoint a model serves: `embeddings`, `images` (`POST /v1/images/generations`) or `chat`
    (chat completions, Messages, Responses). An `images` model is images-only, except on Gemini and Vertex
    (`chat_images`), whose image models answer generateContent and so chat as well."""
    if "embeddings" in capabilities:
        return frozenset({"embeddings"})
    if "images" in capabilities:
        return frozenset({"images", "chat"}) if chat_images else frozenset({"images"})
    return frozenset({"chat"})


class Catalog:
    def __init__(self, config: Config, created: int) -> None:
        self.providers = {
            name: make_provider(name, pc, config.timeouts_for(name)) for name, pc in config.providers.items()
        }
        shipped = load_prices(config.spend.prices_file)
        self.models = {m.id: Model(m, self.providers[m.provider_name], shipped) for m in config.models}
        self._infos = {m.id: m.info(created) for m in self.models.values()}

    def models_body(self, ids: frozenset[str] | None, usable: frozenset[str] | None = None) -> bytes:
        """The `GET /v1/models` body for the models in `ids` (all when None), in catalog order."""
        infos = [i for m, i in self._infos.items() if ids is None or m in ids]
        if usable is not None:
            infos = [msgspec.structs.replace(i, usable=i.id in usable) for i in infos]
        return msgspec.json.encode({"object": "list", "data": infos})

    @property
    def provider_of(self) -> dict[str, str]:
        return {m.id: m.provider.name for m in self.models.values()}

    @property
    def details(self) -> dict[str, ModelInfo]:
        """Each model's `GET /v1/models` entry: context, capabilities, prices (the dashboard's catalog)."""
        return self._infos

    @property
    def metadata(self) -> dict[str, tuple[str, bool]]:
        return {m.id: (m.config.region, m.config.zdr) for m in self.models.values()}

    def get(self, model_id: str) -> Model | None:
        return self.models.get(model_id)
