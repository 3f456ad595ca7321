"""The MCP gateway: one governed MCP endpoint (`/v1/mcp`) in front of the organisation's MCP servers.

- `transport`: the endpoint (Streamable HTTP server side, sessions, authentication).
- `gateway`: the per-worker state (offered tools, grants, credentials) and forwarding calls upstream.
- `upstream`: pooled connections to upstream servers through the official MCP Python SDK's client.
- `admin`, `routes`, `cli`: servers, exploration, whitelists and credentials through the API and the CLI.
- `access`, `names`: access-list entries for MCP, and the `<server>__<tool>` naming.
"""
