"""The Redis client: short timeouts, so a dead Redis costs milliseconds."""

from __future__ import annotations

from functools import cache

import redis

from promptlab.core.settings import get_settings
from promptlab.infra.secrets import with_secret


@cache
def get_redis() -> redis.Redis:
    """The process-wide Redis client (thread-safe connection pool)."""
    settings = get_settings()
    return redis.Redis.from_url(
        with_secret(settings.redis_url, settings.redis_secret_arn),
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
        health_check_interval=30,
    )
