"""The HTTP server: granian RSGI app, endpoints and the proxy path."""

from .app import App, create_app

__all__ = ["App", "create_app"]
