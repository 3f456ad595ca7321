"""Upstream providers: the HTTP transport and one adapter per wire format."""

from ..config import ProviderConfig, Timeouts
from .anthropic import AnthropicProvider
from .azure import AzureProvider
from .bedrock import BedrockProvider
from .gemini import GeminiProvider
from .openai_compat import OpenAICompatProvider
from .openai_responses import OpenAIResponsesProvider
from .vertex import VertexProvider

__all__ = [
    "AnthropicProvider",
    "BedrockProvider",
    "GeminiProvider",
    "OpenAICompatProvider",
    "OpenAIResponsesProvider",
    "make_provider",
]

_KINDS: dict[str, type[OpenAICompatProvider]] = {
    "openai": OpenAICompatProvider,
    "anthropic": AnthropicProvider,
    "openai-responses": OpenAIResponsesProvider,
    "bedrock": BedrockProvider,
    "gemini": GeminiProvider,
    "vertex": VertexProvider,
    "azure": AzureProvider,
}


def make_provider(name: str, config: ProviderConfig, timeouts: Timeouts) -> OpenAICompatProvider:
    """The adapter for the provider's configured ``kind``."""
    return _KINDS[config.kind](name, config, timeouts)
