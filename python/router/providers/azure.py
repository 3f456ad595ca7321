"""Azure OpenAI (`kind: azure`): chat completions and embeddings on a deployment per model, with `api-key`.

- https://learn.microsoft.com/azure/ai-services/openai/reference (the deployment paths and `api-version`)
- https://learn.microsoft.com/azure/ai-services/openai/how-to/managed-identity (Entra ID: a bearer token in
  `headers: {authorization: …}` instead of `api_key`)

Model names are `openai/<deployment>` (the seeds' `azure/openai/gpt-4o`) or the bare deployment, optionally
followed by `@<Azure region>` (`@francecentral`): the region fills `{region}` in `base_url` (one Azure resource
per region, e.g. `https://myco-{region}.openai.azure.com`) and is the model's catalog region.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ..config import ProviderConfig, Timeouts
from .openai_compat import OpenAICompatProvider

__all__ = ["AzureProvider", "split_azure_region"]

DEFAULT_API_VERSION = "2024-10-21"
_PATHS = {"chat": "chat/completions", "embeddings": "embeddings", "images": "images/generations"}
# Azure region names: francecentral, swedencentral, westeurope, eastus2, uksouth …
_REGION = re.compile(r"^[a-z]+(central|east|west|north|south|europe)[a-z]*\d?$")


def split_azure_region(name: str) -> tuple[str, str | None]:
    base, sep, suffix = name.rpartition("@")
    if sep and _REGION.match(suffix):
        return base, suffix
    return name, None


class AzureProvider(OpenAICompatProvider):
    def __init__(self, name: str, config: ProviderConfig, timeouts: Timeouts) -> None:
        super().__init__(name, config, timeouts)
        self._api_version = config.azure_api_version or DEFAULT_API_VERSION

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def region_of(self, upstream_model: str) -> str:
        return split_azure_region(upstream_model)[1] or self.config.region or "global"

    def price_key(self, upstream_model: str) -> str:
        return split_azure_region(upstream_model)[0].removeprefix("openai/")

    def url(self, endpoint: str, upstream_model: str) -> str:
        name, region = split_azure_region(upstream_model)
        deployment = quote(name.removeprefix("openai/"), safe="")
        base = self._base.replace("{region}", region or self.config.region or "")
        return f"{base}/openai/deployments/{deployment}/{_PATHS[endpoint]}?api-version={self._api_version}"
