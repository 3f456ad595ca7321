"""The three client-facing wire formats (OpenAI chat, Anthropic Messages, OpenAI Responses): validation of
requests, non-streaming translation between them, and error bodies in each shape. Streams are translated
in Rust (`router._core.Transcoder`)."""
