"""Where a request goes: the model catalog, routing policies and the executor that runs them."""

from .catalog import Catalog, Model
from .executor import Need, Routing

__all__ = ["Catalog", "Model", "Need", "Routing"]
