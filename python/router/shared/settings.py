"""Which Redis, if any, and how to reach it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import msgspec

from ..config import REDIS_SCHEMES, Config, RedisConfig
from ..errors import ConfigError

if TYPE_CHECKING:
    import redis
    import redis.asyncio

REDIS_ENV = "ROUTER_REDIS"
# Every key lives under one hash tag, so the multi-key scripts also run on a Redis Cluster (one slot).
PREFIX = "router:{r}:"
# Connections per worker process to Redis for reservations and settlements.
POOL_SIZE = 16


def redis_settings(config: Config | None) -> RedisConfig | None:
    """ROUTER_REDIS (the URL) over the config's `redis:`; None: no Redis, the single-host files."""
    url = os.environ.get(REDIS_ENV)
    configured = config.redis if config is not None else None
    if not url:
        return configured
    if not url.startswith(REDIS_SCHEMES):
        raise ConfigError(f"{REDIS_ENV}: expected a redis://, rediss:// or unix:// URL")
    if configured is None:
        return RedisConfig(url=url)
    return msgspec.structs.replace(configured, url=url)


def safe_url(url: str) -> str:
    """The URL without its credentials, for messages."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def sync_client(settings: RedisConfig, timeout: float | None = None) -> redis.Redis:
    import redis  # only where Redis is configured: a single host never loads the client

    t = settings.timeout if timeout is None else timeout
    return redis.Redis.from_url(settings.url, socket_timeout=t, socket_connect_timeout=t, health_check_interval=0)


def async_client(settings: RedisConfig) -> redis.asyncio.Redis:
    import redis.asyncio

    t = settings.timeout
    # A bounded pool: a burst of requests queues for a connection (within the timeout) rather than opening
    # hundreds at once; a round trip takes tens of microseconds, so a few connections carry thousands a second.
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.url, max_connections=POOL_SIZE, timeout=t, socket_timeout=t, socket_connect_timeout=t
    )
    return redis.asyncio.Redis(connection_pool=pool)
