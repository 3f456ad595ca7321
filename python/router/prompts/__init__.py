"""The prompt library: versioned system and vibe prompts attached to keys and groups (`library`), and their
application to each request in its API's own field (`applied`)."""
