"""Upstream providers: the HTTP transport and one adapter per wire format."""

from .openai_compat import OpenAICompatProvider

__all__ = ["OpenAICompatProvider"]
