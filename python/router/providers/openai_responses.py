"""The OpenAI Responses adapter: `POST {base}/responses`, authenticated like any OpenAI-compatible provider."""

from __future__ import annotations

from .openai_compat import OpenAICompatProvider


class OpenAIResponsesProvider(OpenAICompatProvider):
    api = "responses"

    def url(self, endpoint: str, upstream_model: str) -> str:
        return f"{self._base}/responses"
