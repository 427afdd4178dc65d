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


def _sleep(seconds: float) -> None:
    time.sleep(max(0.0, seconds))
