"""The model catalog: every model the gateway can serve, keyed by its public `provider/model` id."""

from __future__ import annotations

import msgspec

from ..config import Config, ModelConfig
from ..providers import OpenAICompatProvider, make_provider


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
    pricing: dict[str, float | None]
    object: str = "model"
    description: str | None = None


class Model:
    """A servable model with everything the hot path needs precomputed."""

    __slots__ = ("config", "id", "provider", "upstream_name", "upstream_name_json", "urls")

    def __init__(self, config: ModelConfig, provider: OpenAICompatProvider) -> None:
        self.config = config
        self.id = config.id
        self.provider = provider
        self.upstream_name = config.upstream_model or config.id.partition("/")[2]
        # The request body is forwarded with only this value swapped in, pre-encoded once here.
        self.upstream_name_json = msgspec.Raw(msgspec.json.encode(self.upstream_name))
        self.urls = {endpoint: provider.url(endpoint, self.upstream_name) for endpoint in ("chat", "embeddings")}

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
            pricing={"input": c.prices.input, "output": c.prices.output, "cached_input": c.prices.cached_input},
            description=c.description,
        )


class Catalog:
    def __init__(self, config: Config, created: int) -> None:
        self.providers = {
            name: make_provider(name, pc, config.timeouts_for(name)) for name, pc in config.providers.items()
        }
        self.models = {m.id: Model(m, self.providers[m.id.partition("/")[0]]) for m in config.models}
        self.models_list_body = msgspec.json.encode(
            {"object": "list", "data": [m.info(created) for m in self.models.values()]}
        )

    def get(self, model_id: str) -> Model | None:
        return self.models.get(model_id)
