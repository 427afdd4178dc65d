"""Waking long polls when a job ends: the worker publishes on a Redis channel per job, waiters listen.

Best effort both ways: a lost message only means the waiter finds the end at its next re-read, and
Redis being down means waiting as before (re-reading Postgres), never an error.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import redis

from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.infra.redis_client import get_redis


def _channel(job_id: str) -> str:
    return f"{get_settings().redis_prefix}job-ended:{job_id}"


def publish_end(job_id: str) -> None:
    """Tell whoever waits for the job that it has ended."""
    try:
        get_redis().publish(_channel(job_id), b"1")
    except (redis.RedisError, OSError):
        logger.warning("job end not published: Redis unavailable", job_id=job_id)


@contextlib.contextmanager
def listening(job_id: str, fallback_poll_seconds: float) -> Iterator[Callable[[float], None]]:
    """Subscribe to the job's end before reading it (so no end falls between the read and the wait); yields
    `wait(seconds)`, which returns when the job ends or after `seconds`."""
    try:
        pubsub = get_redis().pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(_channel(job_id))
    except (redis.RedisError, OSError):
        yield lambda seconds: _sleep(min(seconds, fallback_poll_seconds))
        return

    def wait(seconds: float) -> None:
        try:
            pubsub.get_message(timeout=max(0.0, seconds))
        except (redis.RedisError, OSError):
            _sleep(min(seconds, fallback_poll_seconds))

    try:
        yield wait
    finally:
        with contextlib.suppress(redis.RedisError, OSError):
            pubsub.close()


# KEYS[1]: the waiter's sorted set of open waits. ARGV: limit, hold (ms), member. 1 when a wait may start.
# A wait whose holder died expires on its own: members are scored by when they lapse (Redis's clock).
_WAIT_SLOT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class TooManyWaits(Exception):
    """The waiter already holds as many long polls as it may."""


@contextlib.contextmanager
def wait_slot(waiter: str, *, limit: int, seconds: float) -> Iterator[None]:
    """Hold one of the waiter's `limit` concurrent long polls for at most `seconds`; `TooManyWaits` when all
    are taken. Redis down: the wait goes ahead (a cap is no reason to fail a read)."""
    key = f"{get_settings().redis_prefix}waits:{waiter}"
    member = f"{time.monotonic_ns()}:{id(object())}"
    client = get_redis()
    try:
        granted = client.eval(_WAIT_SLOT_LUA, 1, key, limit, int(seconds * 1000) + 1000, member)
    except (redis.RedisError, OSError):
        granted = None
    if granted == 0:
        raise TooManyWaits(waiter)
    try:
        yield
    finally:
        if granted:
            with contextlib.suppress(redis.RedisError, OSError):
                client.zrem(key, member)


def _sleep(seconds: float) -> None:
    time.sleep(max(0.0, seconds))
