"""The management API (`/v1/manage/...`), its OpenAPI document, and the governance CLI.

Importing the package imports the route modules, which register their routes in `routing.ROUTES`.
"""

from ..mcp import routes as mcp_routes
from . import api, guardrails, policies, prompts, sessions, usage

__all__ = ["api", "guardrails", "mcp_routes", "policies", "prompts", "sessions", "usage"]
