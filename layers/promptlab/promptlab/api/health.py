"""Dependency checks for `GET /health`."""

from __future__ import annotations

import time
from collections.abc import Callable

from promptlab.db.connection import connection
from promptlab.infra.job_queue import get_queue
from promptlab.infra.redis_client import get_redis
from promptlab.models.health import DependencyCheck, HealthPublic


def _ping_postgres() -> None:
    with connection() as conn:
        conn.execute("SELECT 1")


def _ping_redis() -> None:
    get_redis().ping()


def _check(probe: Callable[[], object]) -> DependencyCheck:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # a health check reports every failure, whatever its type
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        return DependencyCheck(status="unavailable", latency_ms=elapsed, error=type(exc).__name__)
    return DependencyCheck(status="ok", latency_ms=round((time.perf_counter() - started) * 1000, 2))


def check_health() -> HealthPublic:
    """Postgres, Redis and the job queue, each with its latency."""
    checks = {
        "postgres": _check(_ping_postgres),
        "redis": _check(_ping_redis),
        "queue": _check(get_queue().ping),
    }
    status = "ok" if all(c.status == "ok" for c in checks.values()) else "degraded"
    return HealthPublic(status=status, checks=checks)
