"""Where a request goes: the model catalog (and, later, routing policies)."""

from .catalog import Catalog, Model

__all__ = ["Catalog", "Model"]
