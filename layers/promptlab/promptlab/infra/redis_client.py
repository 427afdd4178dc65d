"""The Redis client: short timeouts, so a dead Redis costs milliseconds."""

from __future__ import annotations

from functools import cache
from typing import cast

import redis

from promptlab.core.settings import get_settings
from promptlab.infra.secrets import with_secret


@cache
def get_redis() -> redis.Redis:
    """The process-wide Redis client (thread-safe connection pool).

    With `PROMPTLAB_REDIS_CLUSTER=true` (ElastiCache Serverless, which is always in cluster mode) it is a
    cluster client: it follows the slots, and every multi-key call keeps its keys on one slot by a hash tag.
    It answers the same commands, so callers see one type.
    """
    settings = get_settings()
    url = with_secret(settings.redis_url, settings.redis_secret_arn)
    options = {
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "socket_timeout": settings.redis_timeout_seconds,
        "health_check_interval": 30,
    }
    if settings.redis_cluster:
        return cast(redis.Redis, redis.RedisCluster.from_url(url, **options))
    return redis.Redis.from_url(url, **options)
