"""Exact sliding-window rate limits on Redis sorted sets: one round trip, the server's clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import redis

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.infra.redis_client import get_redis

# KEYS: one sorted set per limit. ARGV: window (µs), member, weight, then one limit per key.
# A request is admitted only if every key has room for its weight (a batch's items count one each); then it
# is recorded in all of them, `weight` entries each.
# Returns {admitted, limit, remaining, reset_us} for the tightest key.
SLIDING_WINDOW_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local window = tonumber(ARGV[1])
local member = ARGV[2]
local weight = tonumber(ARGV[3])
local admitted = 1
local best_limit, best_remaining, best_reset = -1, -1, 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 + i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local remaining = limit - count
  local reset = 0
  if count > 0 then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    reset = tonumber(oldest[2]) + window - now
  end
  if remaining < weight then admitted = 0 end
  if best_limit < 0 or remaining < best_remaining then
    best_limit, best_remaining, best_reset = limit, remaining, reset
  end
end
if admitted == 1 then
  for _, key in ipairs(KEYS) do
    for n = 1, weight do
      redis.call('ZADD', key, now, member .. ':' .. n)
    end
    redis.call('PEXPIRE', key, math.ceil(window / 1000))
  end
  best_remaining = best_remaining - weight
  if best_reset == 0 then best_reset = window end
end
return {admitted, best_limit, math.max(best_remaining, 0), best_reset}
"""


@dataclass(frozen=True)
class Decision:
    """The limiter's answer for one request, and what the `X-RateLimit-*` headers report."""

    admitted: bool
    limit: int
    remaining: int
    reset_seconds: int
    # A value read in the same round trip (`also_get`): the key's value, or None when absent or unreadable.
    prefetched: bytes | None = None

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


class SlidingWindowLimiter:
    """Counts requests per key over the last `window` seconds, exactly (one sorted-set entry per request)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(SLIDING_WINDOW_LUA)  # EVALSHA, reloaded on NOSCRIPT

    def _read(self, key: str) -> bytes | None:
        try:
            value = self._client.get(key)
        except (redis.RedisError, OSError):
            return None
        return value if isinstance(value, bytes) else None

    def admit(
        self, limits: dict[str, int], *, window_seconds: int, also_get: str | None = None, weight: int = 1
    ) -> Decision:
        """Admit one request (counting `weight`) against every (key → limit); `DependencyUnavailable` if Redis
        is down.

        `also_get` reads one more key in the same round trip (a pipeline, not a transaction), so the cache
        lookup of `POST /generate` costs no extra trip; on a cluster, whose client pipelines no scripts and
        whose key may live on another shard, it is a second trip.
        """
        keys = list(limits)
        # The request's member in the sorted sets: unique is all it needs to be (no urandom call per request).
        member = f"{random.getrandbits(96):024x}"
        args: list[str | int] = [window_seconds * 1_000_000, member, weight, *limits.values()]
        prefetched: bytes | None = None
        try:
            if also_get is None:
                outcome = self._script(keys=keys, args=args)
            elif isinstance(self._client, redis.RedisCluster):  # a cluster pipelines no scripts: two trips
                outcome = self._script(keys=keys, args=args)
                prefetched = self._read(also_get)
            else:
                pipe = self._client.pipeline(transaction=False)
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
                pipe.get(also_get)
                outcome, value = pipe.execute(raise_on_error=False)
                if isinstance(outcome, redis.exceptions.NoScriptError):
                    outcome = self._script(keys=keys, args=args)  # loads the script, then runs it
                elif isinstance(outcome, Exception):
                    raise outcome
                prefetched = value if isinstance(value, bytes) else None
            admitted, limit, remaining, reset_us = outcome
        except (redis.RedisError, OSError) as exc:
            raise DependencyUnavailable("the rate limiter is unavailable", details={"dependency": "redis"}) from exc
        return Decision(
            admitted=bool(admitted),
            limit=int(limit),
            remaining=int(remaining),
            reset_seconds=max(1, -(-int(reset_us) // 1_000_000)),
            prefetched=prefetched,
        )


@cache
def get_limiter() -> SlidingWindowLimiter:
    """The process-wide limiter."""
    return SlidingWindowLimiter(get_redis())


# POSTs that make jobs or store files: the generate limit (a batch's lines also count against a key's --rpm).
GENERATE_PATHS = frozenset({"/generate", "/generate/batch", "/v1/chat/completions", "/v1/batches", "/v1/files",
                            "/v1/files/uploads"})  # fmt: skip


def route_class(method: str, path: str) -> str | None:
    """`generate`, `read`, or None for routes that are never limited (health checks)."""
    if path == "/health":
        return None
    if method.upper() == "POST" and path in GENERATE_PATHS:
        return "generate"
    return "read"


def check(
    *,
    client_ip: str,
    method: str,
    path: str,
    key_id: str | None = None,
    key_limit: int | None = None,
    also_get: str | None = None,
) -> Decision | None:
    """The decision for one request by client IP and route class, and by API key when the key has a
    limit (`--rpm`: every request of the key, per window); None when it is not limited. One round trip.

    Redis down: `DependencyUnavailable` (fail-closed), or None when `rate_limit_fail_open` is set.
    """
    settings = get_settings()
    kind = route_class(method, path)
    if kind is None:
        return None
    limit = settings.rate_limit_generate if kind == "generate" else settings.rate_limit_reads
    # One hash tag for every limiter key: multi-key scripts work on a Redis cluster (ElastiCache Serverless).
    limits = {f"{settings.redis_prefix}{{rl}}:ip:{client_ip}:{kind}": limit} if limit > 0 else {}
    if key_id is not None and key_limit:
        limits[_key_limit_name(key_id)] = key_limit
    if not limits:
        return None
    return _admit(limits, also_get=also_get)


def _admit(limits: dict[str, int], *, also_get: str | None = None, weight: int = 1) -> Decision | None:
    """The limiter's decision; Redis down: `DependencyUnavailable` (fail-closed), or None in fail-open mode."""
    settings = get_settings()
    try:
        return get_limiter().admit(
            limits, window_seconds=settings.rate_limit_window_seconds, also_get=also_get, weight=weight
        )
    except DependencyUnavailable:
        if settings.rate_limit_fail_open:
            logger.warning("rate limiter unavailable; request let through (fail-open)")
            return None
        raise


def _key_limit_name(key_id: str) -> str:
    return f"{get_settings().redis_prefix}{{rl}}:key:{key_id}"


def check_items(*, key_id: str, key_limit: int, items: int) -> Decision | None:
    """A batch's further items against the key's limit (`--rpm` counts each item; the request itself was
    counted by `check`); None when there are none or Redis is down in fail-open mode."""
    if items <= 0:
        return None
    return _admit({_key_limit_name(key_id): key_limit}, weight=items)


def _auth_failure_key(client_ip: str) -> str:
    return f"{get_settings().redis_prefix}{{rl}}:authfail:{client_ip}"


def auth_failures_exceeded(client_ip: str) -> bool:
    """Whether this address sent `rate_limit_auth_failures` unknown keys in the current window (a fixed
    window: a guard against key guessing, not a quota). Redis down: False (the key lookup still decides)."""
    limit = get_settings().rate_limit_auth_failures
    if limit <= 0:
        return False
    try:
        count = get_redis().get(_auth_failure_key(client_ip))
    except (redis.RedisError, OSError):
        return False
    return count is not None and int(count) >= limit


LIVE_KEYS_TTL_SECONDS = 3600  # the set of live keys' digests is read again from Postgres at least this often


def _live_keys_key() -> str:
    return f"{get_settings().redis_prefix}{{auth}}:live"


def is_live_key(digest: str, *, load: Callable[[], list[str]]) -> bool:
    """Whether a key digest belongs to a live key, by the set of live digests in Redis (filled with `load`
    when missing: an empty node, an hour passed). Lets a real key in from an address that sent too many
    unknown ones, while a guess still costs the database nothing. Redis down: True (the lookup decides)."""
    client = get_redis()
    try:
        if not client.exists(_live_keys_key()):
            digests = load()
            pipe = client.pipeline(transaction=True)
            pipe.delete(_live_keys_key())
            pipe.sadd(_live_keys_key(), "-", *digests)  # "-": the set exists even with no key at all
            pipe.expire(_live_keys_key(), LIVE_KEYS_TTL_SECONDS)
            pipe.execute()
            return digest in digests
        return bool(client.sismember(_live_keys_key(), digest))
    except (redis.RedisError, OSError):
        return True


def live_key_added(digest: str) -> None:
    """A key was made: a set of live digests already filled learns it (best effort; the hour refills it)."""
    try:
        if get_redis().exists(_live_keys_key()):
            get_redis().sadd(_live_keys_key(), digest)
    except (redis.RedisError, OSError):
        logger.warning("new key not added to the live set: Redis unavailable")


def record_auth_failure(client_ip: str) -> None:
    """Count one unknown key from this address (best effort)."""
    settings = get_settings()
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(_auth_failure_key(client_ip))
        pipe.expire(_auth_failure_key(client_ip), settings.rate_limit_window_seconds, nx=True)
        pipe.execute()
    except (redis.RedisError, OSError):
        logger.warning("auth failure not counted: Redis unavailable")
