"""State shared by gateway replicas through Redis: the change epoch (`signal`) and the budget ledger
(`ledger`). Enabled by ROUTER_REDIS or the config's `redis:`; without it the single-host memory-mapped files
beside the database do both jobs (`store.signal`, `spend.ledger`)."""

from .settings import REDIS_ENV, redis_settings

__all__ = ["REDIS_ENV", "redis_settings"]
