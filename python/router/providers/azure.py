"""Azure OpenAI (`kind: azure`): chat completions, embeddings and images on a deployment per model, or the
Responses API, with `api-key` or an Entra ID bearer token.

- https://learn.microsoft.com/azure/ai-services/openai/reference (the deployment paths and `api-version`)
- https://learn.microsoft.com/azure/ai-services/openai/how-to/responses (`POST /openai/responses`, the deployment
  as `model`)
- https://learn.microsoft.com/azure/ai-services/openai/how-to/managed-identity (Entra ID bearer tokens)
- https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow (the client-credentials
  grant the gateway uses with `azure_client_id` / `azure_client_secret`)
- https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http
  (`azure_managed_identity`: the Instance Metadata Service's token endpoint, `Metadata: true`)
- https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference (App Service and
  Container Apps: `IDENTITY_ENDPOINT` with the `X-IDENTITY-HEADER` secret, api-version 2019-08-01)

Model names are `openai/<deployment>` (the seeds' `azure/openai/gpt-4o`) or the bare deployment, optionally
followed by `@<Azure region>` (`@francecentral`): the region fills `{region}` in `base_url` (one Azure resource
per region, e.g. `https://myco-{region}.openai.azure.com`) and is the model's catalog region.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote, urlencode

import msgspec

from ..config import ProviderConfig, Timeouts
from ..errors import ConfigError
from .oauth import RefreshedTokens, TokenSource
from .openai_compat import OpenAICompatProvider
from .transport import Response

__all__ = ["AzureProvider", "split_azure_region"]

DEFAULT_API_VERSION = "2024-10-21"
# The Responses API needs a preview api-version on the deployment-less path.
DEFAULT_RESPONSES_API_VERSION = "2025-04-01-preview"
ENTRA_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
# Managed identities: the Instance Metadata Service (VMs, AKS), overridable for tests and proxies; App Service and
# Container Apps name their own endpoint and secret header in the environment.
IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token"
IMDS_URL_ENV = "ROUTER_AZURE_IMDS_URL"
IMDS_API_VERSION = "2018-02-01"
APP_SERVICE_API_VERSION = "2019-08-01"
_PATHS = {"chat": "chat/completions", "embeddings": "embeddings", "images": "images/generations"}
# Azure region names: francecentral, swedencentral, westeurope, eastus2, uksouth …
_REGION = re.compile(r"^[a-z]+(central|east|west|north|south|europe)[a-z]*\d?$")


def split_azure_region(name: str) -> tuple[str, str | None]:
    base, sep, suffix = name.rpartition("@")
    if sep and _REGION.match(suffix):
        return base, suffix
    return name, None


class AzureProvider(RefreshedTokens, OpenAICompatProvider):
    def __init__(self, name: str, config: ProviderConfig, timeouts: Timeouts) -> None:
        super().__init__(name, config, timeouts)
        responses = config.azure_api == "responses"
        # An instance attribute: one Azure resource can be configured twice, for chat and for Responses.
        self.api = "responses" if responses else "chat"
        self._api_version = config.azure_api_version or (
            DEFAULT_RESPONSES_API_VERSION if responses else DEFAULT_API_VERSION
        )
        self._tokens = self._entra(name, config)

    @staticmethod
    def _entra(name: str, config: ProviderConfig) -> TokenSource | None:
        where = f"providers.{name}"
        client_id, secret = config.azure_client_id, config.azure_client_secret
        if config.azure_managed_identity:
            return AzureProvider._managed_identity(name, config)
        if client_id is None and secret is None:
            return None
        if not client_id or not secret:
            raise ConfigError(f"{where}: Entra ID needs both azure_client_id and azure_client_secret")
        if config.api_key:
            raise ConfigError(f"{where}: set api_key or Entra ID (azure_client_id/azure_client_secret), not both")
        url = config.azure_token_url
        if url is None:
            if not config.azure_tenant_id:
                raise ConfigError(f"{where}.azure_tenant_id: Entra ID needs the tenant (or azure_token_url)")
            url = ENTRA_TOKEN_URL.format(tenant=quote(config.azure_tenant_id, safe=""))
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                "scope": config.azure_scope,
            }
        )
        return TokenSource(name, url, lambda _now: form, "the Entra ID application")

    @staticmethod
    def _managed_identity(name: str, config: ProviderConfig) -> TokenSource:
        """The Azure resource's managed identity: system-assigned, or the user-assigned one `azure_client_id`
        names. App Service / Container Apps when their endpoint is in the environment, else the IMDS."""
        where = f"providers.{name}"
        if config.azure_client_secret is not None:
            raise ConfigError(f"{where}: azure_managed_identity takes no azure_client_secret (it has no secret)")
        if config.api_key:
            raise ConfigError(f"{where}: set api_key or azure_managed_identity, not both")
        # Managed identity endpoints take the v1 `resource`, not a v2 scope.
        query = {"resource": config.azure_scope.removesuffix("/.default")}
        if config.azure_client_id:
            query["client_id"] = config.azure_client_id
        endpoint, secret = os.environ.get("IDENTITY_ENDPOINT"), os.environ.get("IDENTITY_HEADER")
        if endpoint and secret:
            url = f"{endpoint}?{urlencode({'api-version': APP_SERVICE_API_VERSION, **query})}"
            headers = {"x-identity-header": secret}
        else:
            base = config.azure_token_url or os.environ.get(IMDS_URL_ENV) or IMDS_TOKEN_URL
            url = f"{base}?{urlencode({'api-version': IMDS_API_VERSION, **query})}"
            headers = {"metadata": "true"}
        return TokenSource(name, url, None, "the managed identity", headers)

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
        if self.api == "responses" and endpoint == "chat":
            # One path for every deployment: the fragment (never sent) carries the deployment into the body.
            return f"{base}/openai/responses?api-version={self._api_version}#{deployment}"
        return f"{base}/openai/deployments/{deployment}/{_PATHS[endpoint]}?api-version={self._api_version}"

    async def _request(
        self, url: str, body: bytes, extra: dict[str, str] | None
    ) -> tuple[str, bytes, dict[str, str] | None]:
        """The URL to send, the body (the deployment as `model` for the Responses API) and the credentials."""
        url, _, deployment = url.partition("#")
        if deployment:
            request = msgspec.json.decode(body)
            if isinstance(request, dict):
                request["model"] = deployment
                body = msgspec.json.encode(request)
        if self._tokens is not None and not (extra and "api-key" in extra):  # a BYOK key wins
            extra = {**(extra or {}), "authorization": f"Bearer {await self._tokens.token()}"}
        return url, body, extra

    async def post(
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> tuple[Response, bytes]:
        url, body, extra = await self._request(url, body, extra)
        return await super().post(url, body, request_id, extra)

    @asynccontextmanager
    async def stream(
        self, url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None
    ) -> AsyncIterator[Response]:
        url, body, extra = await self._request(url, body, extra)
        async with super().stream(url, body, request_id, extra) as response:
            del body  # sent (see OpenAICompatProvider.stream)
            yield response
