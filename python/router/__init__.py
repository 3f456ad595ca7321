"""router: a self-hosted, high-throughput LLM gateway with model governance."""
