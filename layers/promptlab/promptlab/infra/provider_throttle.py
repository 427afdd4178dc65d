"""Provider flow control, shared by every worker through Redis: adaptive concurrency per provider and model.

Each route (provider + model) has a concurrency limit that grows while calls succeed and shrinks on congestion
— AIMD, as in TCP: until the first 429 it grows by one per success (slow start), after it by one per round of
`limit` successes, and at least one a second however long the calls take. A 429 (we send too much: our own
ceiling) halves it; an overload (503, 529, a timeout: the provider busy, mostly with other customers' calls)
cuts it by 30 % without ending slow start; each at most once per window, so random failures do not collapse it
(TCP's weakness under random loss). A single 529 slows the route; only a sustained failure rate (more than
half of at least `flow_min_calls` calls in the last one to two `flow_window_seconds`, by the 95 % Wilson lower
bound, so that bad luck under random faults is not taken for an outage) pauses it, after which one probe call
at a time tests recovery, the pause doubling (1 s, 2 s, 4 s … `flow_max_pause_seconds`) while probes fail.
The provider's rate-limit headers (Anthropic `anthropic-ratelimit-*`, OpenAI `x-ratelimit-*`) add a second
bound: the lowest remaining budget they reported, minus the calls in flight, until their reset; a budget
reported used up also halves the limit (we send as fast as the provider allows), like a 429, and after its
reset one call learns the new budget before others follow (a sliding window frees slots one by one). Before
the first cut, a success's reported budget also seeds the limit by Little's law (calls left until the reset
× the call's latency ÷ the time to the reset), so a fresh route with plenty of budget does not creep up
from `flow_initial_concurrency` one call at a time.

A call holds a slot from `reserve` to `settle` (one Lua script each, so one Redis round trip each); a slot
whose worker died expires with its lease. Redis errors never stop work (fail-open: the worst case is the
provider's own 429, retried as usual).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import redis

from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.infra.redis_client import get_redis

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")
CONGESTION_STATUSES = frozenset({503, 529})

Outcome = Literal["ok", "limited", "congested", "failed", "none"]


def _key(provider: str, model: str, part: str) -> str:
    # One hash tag per provider, so each script's keys live on one shard of a Redis cluster.
    return f"{get_settings().redis_prefix}{{throttle:{provider}}}:{model}:{part}"


def _keys(provider: str, model: str) -> list[str]:
    return [_key(provider, model, "state"), _key(provider, model, "inflight"), _key(provider, model, "remaining")]


# KEYS: state hash, in-flight sorted set (token → lease end), remaining budget.
# ARGV: now ms, token, lease ms, initial limit. Returns 0 (a slot is held), ms to wait, or -1 (no free slot).
RESERVE_LUA = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local s = redis.call('HMGET', KEYS[1], 'limit', 'paused_until', 'exhausted_until')
local paused = tonumber(s[2]) or 0
if paused > now then return paused - now end
local limit = tonumber(s[1]) or tonumber(ARGV[4])
local inflight = redis.call('ZCARD', KEYS[2])
local remaining = redis.call('GET', KEYS[3])
if remaining and tonumber(remaining) - inflight <= 0 then
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl < 1 then ttl = 1 end
  return ttl
end
-- After the provider reported its budget used up, one call learns the new budget before others follow.
if not remaining and (tonumber(s[3]) or 0) > now and inflight > 0 then return -1 end
if inflight >= math.max(1, math.floor(limit)) then return -1 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) + 60000)
return 0
"""

# KEYS: as above. ARGV: now ms, token, outcome, initial limit, max limit, window ms, min calls, max pause ms,
# remaining (-1: not reported), ms until its reset, the call's latency ms (-1: unknown). Returns the pause it
# started in ms (0: none).
SETTLE_LUA = """
local now = tonumber(ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
local f = {'limit', 'threshold', 'win_start', 'win_ok', 'win_bad', 'last_cut', 'pauses', 'prev_ok', 'prev_bad'}
local s = redis.call('HMGET', KEYS[1], unpack(f))
local limit = tonumber(s[1]) or tonumber(ARGV[4])
local threshold = tonumber(s[2]) or tonumber(ARGV[5])
local win_start, ok, bad = tonumber(s[3]) or now, tonumber(s[4]) or 0, tonumber(s[5]) or 0
local last_cut, pauses = tonumber(s[6]) or 0, tonumber(s[7]) or 0
local prev_ok, prev_bad = tonumber(s[8]) or 0, tonumber(s[9]) or 0
local window = tonumber(ARGV[6])
if now - win_start > 2 * window then prev_ok, prev_bad, win_start, ok, bad = 0, 0, now, 0, 0
elseif now - win_start > window then prev_ok, prev_bad, win_start, ok, bad = ok, bad, now, 0, 0 end
local outcome, pause = ARGV[3], 0
if outcome == 'ok' then
  ok, pauses = ok + 1, 0
  local left, reset_ms, latency = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
  if limit < threshold then limit = limit + 1
  else
    -- One per round of `limit` successes (TCP), but at least one slot a second however long calls take
    -- (as CUBIC makes TCP's growth independent of the round trip): a round of 20-second generations must
    -- not take minutes to win back a cut. Never faster than one per success.
    local per_second = 0
    if latency > 0 then per_second = latency / 1000 / limit end
    limit = limit + math.min(1, math.max(1 / limit, per_second))
  end
  -- Before the first cut, a reported budget seeds the limit (Little's law): the calls it allows until its
  -- reset, each taking as long as this one, can be in flight at once.
  if limit < threshold and left > 0 and reset_ms > 0 and latency > 0 then
    limit = math.max(limit, math.floor(left * latency / reset_ms))
  end
  limit = math.min(limit, tonumber(ARGV[5]))
elseif outcome == 'limited' or outcome == 'congested' or outcome == 'failed' then
  bad = bad + 1
  if (outcome == 'limited' or outcome == 'congested') and now - last_cut >= window then
    -- A 429 is our own ceiling: halve, and grow one per round from there. An overload is the provider busy
    -- (mostly with others' calls): 30 % less, and slow start goes on if it had not ended.
    if outcome == 'limited' then threshold = math.max(1, limit * 0.5); limit = threshold
    else limit = math.max(1, limit * 0.7); threshold = math.max(threshold, limit) end
    last_cut = now
  end
  -- The rate counts this window and the one before, so a few unlucky calls at a window's start do not pause.
  -- "Most calls fail" must be more than bad luck: the 95 % Wilson lower bound of the failure rate is over a
  -- half (4 of 4 failing is; 3 of 4, which a 30 % random fault rate gives 8 % of the time, is not).
  local calls, failures = ok + bad + prev_ok + prev_bad, bad + prev_bad
  local sustained = false
  if calls >= tonumber(ARGV[7]) then
    local p, z2 = failures / calls, 3.8416
    local lower = (p + z2 / (2 * calls) - 1.96 * math.sqrt(p * (1 - p) / calls + z2 / (4 * calls * calls)))
      / (1 + z2 / calls)
    sustained = lower > 0.5
  end
  if pauses > 0 or sustained then
    pause = math.min(tonumber(ARGV[8]), 1000 * 2 ^ pauses)
    pauses = pauses + 1
    limit, win_start, ok, bad, prev_ok, prev_bad = 1, now, 0, 0, 0, 0
    redis.call('HSET', KEYS[1], 'paused_until', now + pause)
  end
end
-- A provider that reports its budget used up says we send as fast as it allows: stop growing (once a window).
if tonumber(ARGV[9]) == 0 and now - last_cut >= window then
  threshold = math.max(1, limit * 0.5)
  limit, last_cut = threshold, now
end
redis.call('HSET', KEYS[1], 'limit', limit, 'threshold', threshold, 'win_start', win_start, 'win_ok', ok,
  'win_bad', bad, 'last_cut', last_cut, 'pauses', pauses, 'prev_ok', prev_ok, 'prev_bad', prev_bad)
redis.call('PEXPIRE', KEYS[1], 3600000)
-- Answers arrive out of order: within one reset window a late, higher `remaining` must not raise the budget.
local remaining, known = tonumber(ARGV[9]), tonumber(redis.call('GET', KEYS[3]))
if remaining >= 0 and (known == nil or remaining < known) then
  redis.call('SET', KEYS[3], remaining, 'PX', math.max(1, tonumber(ARGV[10])))
end
if remaining == 0 then
  redis.call('HSET', KEYS[1], 'exhausted_until', now + tonumber(ARGV[10]) + 60000)
elseif remaining > 0 then
  redis.call('HDEL', KEYS[1], 'exhausted_until')
end
return pause
"""


@dataclass(frozen=True)
class RouteState:
    """What the workers share about one route (for tests and operators)."""

    limit: float
    in_flight: int
    paused_for: float


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


def budget_from_headers(headers: Mapping[str, str]) -> tuple[int, float] | None:
    """The tightest (calls left, seconds until reset) the headers report; a limit at or below
    `throttle_min_remaining` counts as used up (capped at `throttle_max_pause_seconds`)."""
    limits = _limits(headers)
    if not limits:
        return None
    remaining, reset = min(limits)
    settings = get_settings()
    if remaining <= settings.throttle_min_remaining:
        return 0, min(reset, settings.throttle_max_pause_seconds)
    return remaining, reset


def outcome_of(status: int | None, code: str) -> Outcome:
    """How a failed call counts: a 429 (the provider says we send too much) halves the limit, an overload (503,
    529, a timeout) shrinks it by 30 %, each at most once a window; other retryable
    failures count toward the failure rate only; permanent ones say nothing about the route's health."""
    if status == 429:
        return "limited"
    if status in CONGESTION_STATUSES or code == "timeout":
        return "congested"
    if status is None or status >= 500 or code in {"connection_error", "provider_unavailable"}:
        return "failed"
    return "none"


@dataclass(frozen=True)
class Reservation:
    """The answer to asking for a slot: held, or how long to wait before asking again."""

    wait_seconds: float = 0.0
    slots_taken: bool = False  # every slot is in use: a call of the route ending frees one (else paused/budget)

    @property
    def held(self) -> bool:
        return self.wait_seconds <= 0 and not self.slots_taken


def reserve(provider: str, model: str, *, token: str, lease_seconds: float) -> Reservation:
    """Hold a slot of the route for one call (settle it later), or say how long to wait first: the route is
    paused or its reported budget used up (that long), or every slot is taken (`flow_slot_wait_seconds`)."""
    settings = get_settings()
    try:
        waited = get_redis().eval(
            RESERVE_LUA, 3, *_keys(provider, model), int(time.time() * 1000), token, int(lease_seconds * 1000),
            settings.flow_initial_concurrency,
        )  # fmt: skip
    except (redis.RedisError, OSError):
        return Reservation()
    if int(waited) < 0:
        return Reservation(wait_seconds=settings.flow_slot_wait_seconds, slots_taken=True)
    return Reservation(wait_seconds=int(waited) / 1000)


def settle(
    provider: str,
    model: str,
    *,
    token: str,
    outcome: Outcome,
    headers: Mapping[str, str] | None = None,
    latency_seconds: float | None = None,
) -> float:
    """End the call that held `token`: grow or shrink the route's limit (a success with a reported budget and
    its latency seeds it, before the first cut), record the provider's reported budget, and pause the route
    when most recent calls failed. Returns the pause started (0: none)."""
    settings = get_settings()
    budget = budget_from_headers(headers or {})
    remaining, reset = budget if budget is not None else (-1, 0.0)
    try:
        paused = get_redis().eval(
            SETTLE_LUA, 3, *_keys(provider, model), int(time.time() * 1000), token, outcome,
            settings.flow_initial_concurrency, settings.flow_max_concurrency, int(settings.flow_window_seconds * 1000),
            settings.flow_min_calls, int(settings.flow_max_pause_seconds * 1000), remaining, int(reset * 1000),
            int(latency_seconds * 1000) if latency_seconds is not None else -1,
        )  # fmt: skip
    except (redis.RedisError, OSError):
        logger.warning("flow control state not saved: Redis unavailable", provider=provider, model=model)
        return 0.0
    if int(paused) > 0:
        logger.warning("most calls of the route fail; paused", provider=provider, model=model, ms=int(paused))
    return int(paused) / 1000


def state(provider: str, model: str) -> RouteState:
    """The route's current limit, calls in flight, and how long it stays paused."""
    client = get_redis()
    now_ms = time.time() * 1000
    limit, paused_until = client.hmget(_key(provider, model, "state"), ["limit", "paused_until"])
    in_flight = client.zcount(_key(provider, model, "inflight"), now_ms, "+inf")
    return RouteState(
        limit=float(limit) if limit is not None else float(get_settings().flow_initial_concurrency),
        in_flight=int(in_flight),
        paused_for=max(0.0, (float(paused_until) - now_ms) / 1000) if paused_until is not None else 0.0,
    )


def forget(provider: str, model: str) -> None:
    """Drop what the workers share about a route (tests; an operator after a provider's incident)."""
    with contextlib.suppress(redis.RedisError, OSError):
        get_redis().delete(*_keys(provider, model))
