"""Provider-aware throttling: workers share what providers say about their limits, through Redis.

After every call the worker reads the provider's rate-limit headers (Anthropic `anthropic-ratelimit-*`,
OpenAI `x-ratelimit-*`). When a model's remaining requests or tokens run out, the model is paused until
the provider's reset time; a 429 pauses it for its `retry-after`; an overload storm (529) pauses
the whole provider with a growing backoff. Before claiming a job, a worker that finds its route paused
puts the message back for that long (visibility timeout) without spending an attempt. Redis errors
never stop work (fail-open: the worst case is the provider's own 429, handled as before).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping
from datetime import datetime

import redis

from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.infra.redis_client import get_redis

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")
OVERLOAD_STATUSES = frozenset({529})  # Anthropic's "overloaded"; a 503 is one failed call, retried as usual


def _key(provider: str, model: str | None = None, part: str = "pause") -> str:
    # One hash tag per provider: the reservation script touches all of a provider's keys (Redis cluster).
    scope = f":{model}" if model else ""
    return f"{get_settings().redis_prefix}{{throttle:{provider}}}{scope}:{part}"


# Reserve a call: wait for any pause; else, when the provider's last reported remaining budget minus the
# calls already in flight is used up, wait for its reset; else count this call as in flight.
# KEYS: provider pause, model pause, model remaining, model in flight. ARGV: now (ms). Returns ms to wait.
RESERVE_LUA = """
local wait = 0
for i = 1, 2 do
  local until_ms = redis.call('GET', KEYS[i])
  if until_ms and tonumber(until_ms) - tonumber(ARGV[1]) > wait then wait = tonumber(until_ms) - tonumber(ARGV[1]) end
end
if wait > 0 then return math.ceil(wait) end
local remaining = redis.call('GET', KEYS[3])
local inflight = tonumber(redis.call('GET', KEYS[4]) or '0')
if remaining and tonumber(remaining) - inflight <= 0 then
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl < 1 then ttl = 1 end
  return ttl
end
redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], 120000)
return 0
"""


def _seconds_until(value: str) -> float | None:
    """A reset as RFC 3339 time (Anthropic), a duration like `6m0s` or `20ms` (OpenAI), or seconds."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - time.time())
    except ValueError:
        pass
    match = _DURATION.match(value)
    if match and any(match.groups()):
        hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds + millis / 1000
    return None


def _limits(headers: Mapping[str, str]) -> list[tuple[int, float]]:
    """(remaining, seconds until reset) for each limit the headers report."""
    lowered = {k.lower(): v for k, v in headers.items()}
    found = []
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        pairs = (
            (f"anthropic-ratelimit-{kind}-remaining", f"anthropic-ratelimit-{kind}-reset"),
            (f"x-ratelimit-remaining-{kind}", f"x-ratelimit-reset-{kind}"),
        )
        for remaining_name, reset_name in pairs:
            if remaining_name in lowered and reset_name in lowered:
                try:
                    remaining = int(float(lowered[remaining_name]))
                except ValueError:
                    continue
                reset = _seconds_until(lowered[reset_name])
                if reset is not None:
                    found.append((remaining, reset))
    return found


def _pause(key: str, seconds: float) -> None:
    if seconds <= 0:
        return
    until_ms = int((time.time() + seconds) * 1000)
    try:
        client = get_redis()
        # Keep the later of two pauses: SET only if absent, else raise it when ours ends later.
        if not client.set(key, until_ms, px=int(seconds * 1000) + 1, nx=True):
            current = client.get(key)
            if current is None or int(current) < until_ms:
                client.set(key, until_ms, px=int(seconds * 1000) + 1)
    except (redis.RedisError, OSError, ValueError):
        logger.warning("throttle state not saved: Redis unavailable", key=key)


def note_headers(provider: str, model: str, headers: Mapping[str, str]) -> None:
    """Keep the provider's remaining budget (until its reset) for `reserve`, and pause the model until the
    reset when a limit is (nearly) used up."""
    limits = _limits(headers)
    if limits:
        remaining, reset = min(limits)
        with contextlib.suppress(redis.RedisError, OSError):
            get_redis().set(_key(provider, model, "remaining"), remaining, px=max(1, int(reset * 1000)))
    floor = get_settings().throttle_min_remaining
    waits = [reset for remaining, reset in limits if remaining <= floor]
    if waits:
        wait = min(max(waits), get_settings().throttle_max_pause_seconds)
        logger.info("provider limit reached; model paused", provider=provider, model=model, seconds=round(wait, 2))
        _pause(_key(provider, model), wait)


def note_failure(provider: str, model: str, status: int | None, retry_after: float | None) -> None:
    """A 429 pauses the model; an overload (529) pauses the whole provider, longer as a storm goes on."""
    settings = get_settings()
    if status == 429:
        _pause(_key(provider, model), min(retry_after or 1.0, settings.throttle_max_pause_seconds))
    elif status in OVERLOAD_STATUSES:
        try:
            client = get_redis()
            storm_key = _key(provider, part="storm")
            count = int(client.incr(storm_key))
            client.expire(storm_key, 60)
        except (redis.RedisError, OSError):
            count = 1
        backoff = retry_after or min(settings.throttle_max_pause_seconds, 2.0 ** min(count, 6))
        logger.warning("provider overloaded; provider paused", provider=provider, seconds=backoff, storm=count)
        _pause(_key(provider), backoff)


def wait_seconds(provider: str, model: str) -> float:
    """How long work on this provider and model should wait (0: go ahead)."""
    try:
        values = get_redis().mget([_key(provider), _key(provider, model)])
    except (redis.RedisError, OSError):
        return 0.0
    now_ms = time.time() * 1000
    waits = [(int(v) - now_ms) / 1000 for v in values if v is not None]
    return max([0.0, *waits])


def reserve(provider: str, model: str) -> float:
    """Seconds to wait before calling this provider and model; 0 means go ahead (the call is then counted
    as in flight until `release`)."""
    keys = [
        _key(provider),
        _key(provider, model),
        _key(provider, model, "remaining"),
        _key(provider, model, "inflight"),
    ]
    try:
        client = get_redis()
        waited = client.eval(RESERVE_LUA, 4, *keys, int(time.time() * 1000))
    except (redis.RedisError, OSError):
        return 0.0
    return int(waited) / 1000


def release(provider: str, model: str) -> None:
    """The reserved call has ended (answered, failed, or never made)."""
    with contextlib.suppress(redis.RedisError, OSError):
        get_redis().decr(_key(provider, model, "inflight"))
