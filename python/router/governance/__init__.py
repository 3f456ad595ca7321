"""Who may call the gateway: API keys, and (later) which models each key may reach."""
