"""The result cache in Redis, keyed by a job's `input_hash`. Fail-open: its errors never fail a generation."""

from __future__ import annotations

import json

import redis

from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.infra.redis_client import get_redis
from promptlab.models.jobs import CachedResult


def key_for(input_hash: str) -> str:
    """The Redis key of a cached result."""
    return _key(input_hash)


def decode(raw: bytes | str | None) -> CachedResult | None:
    """A cached value as read from Redis (None: a miss, or a value that is not ours)."""
    if raw is None:
        return None
    try:
        return CachedResult.from_json(json.loads(raw))
    except (ValueError, TypeError, KeyError, ArithmeticError):
        return None


def _key(input_hash: str) -> str:
    return f"{get_settings().redis_prefix}cache:{input_hash}"


def get_result(input_hash: str) -> CachedResult | None:
    """A cached result, or None (a miss, or Redis unavailable)."""
    try:
        raw = get_redis().get(_key(input_hash))
    except (redis.RedisError, OSError) as exc:
        logger.warning("result cache unavailable; treated as a miss", error=type(exc).__name__)
        return None
    return decode(raw)


def get_results(input_hashes: list[str]) -> dict[str, CachedResult]:
    """The cached results of many inputs in one round trip (a pipeline: cluster slots are fine); Redis
    unavailable: none."""
    if not input_hashes:
        return {}
    try:
        pipe = get_redis().pipeline(transaction=False)
        for input_hash in input_hashes:
            pipe.get(_key(input_hash))
        raws = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        logger.warning("result cache unavailable; treated as misses", error=type(exc).__name__)
        return {}
    found = {h: decode(raw) for h, raw in zip(input_hashes, raws, strict=True)}
    return {h: result for h, result in found.items() if result is not None}


def put_result(input_hash: str, result: CachedResult, *, ttl_seconds: int) -> bool:
    """Cache a result for `ttl_seconds`; skipped (False) when too large, TTL 0, or Redis unavailable."""
    if ttl_seconds <= 0:
        return False
    text = json.dumps(result.to_json(), separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > get_settings().cache_max_value_bytes:
        return False
    try:
        get_redis().set(_key(input_hash), text, ex=ttl_seconds)
    except (redis.RedisError, OSError) as exc:
        logger.warning("result not cached: Redis unavailable", error=type(exc).__name__)
        return False
    return True


def forget(input_hash: str) -> None:
    """Drop a cached result (privacy purges)."""
    try:
        get_redis().delete(_key(input_hash))
    except (redis.RedisError, OSError):
        logger.warning("cached result not dropped: Redis unavailable", input_hash=input_hash)
