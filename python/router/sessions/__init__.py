"""Automatic session reconstruction: grouping requests into conversations without a session id from the client."""

from .tracker import Sessions

__all__ = ["Sessions"]
