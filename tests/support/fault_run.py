"""A load run against `promptlab local` while its stores fail on a timeline: what the e2e store-fault tests
assert and what `./dev bench faults` prints. Jobs are submitted at a steady rate over HTTP; every answer is
counted; afterwards every accepted job is followed until it ends."""

from __future__ import annotations

import collections
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.support.local_stack import dev_key, running_stack
from tests.support.stores import OwnPostgres, OwnRedis

Event = tuple[float, str, Callable[[], object]]  # (seconds after the load starts, what, action)


@dataclass
class StoreStack:
    """`promptlab local` on a Postgres and a Redis of its own, with a fake provider that logs each answer."""

    base: str
    key: str
    postgres: OwnPostgres
    redis: OwnRedis
    database_url: str
    answer_log: Path
    log: Path  # the runner's output (JSON log lines)

    def logged(self, message: str) -> int:
        """How many log lines carry this message."""
        return self.log.read_text().count(f'"message":"{message}"')

    def call(self, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        status, answer, _ = self.exchange(method, path, body, timeout)
        return status, answer

    def exchange(
        self, method: str, path: str, body: Any = None, timeout: float = 30
    ) -> tuple[int, Any, dict[str, str]]:
        """One HTTP call: status, decoded body and headers."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as answer:
                return answer.status, json.loads(answer.read() or b"null"), dict(answer.headers)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null"), dict(err.headers)

    def sql(self, query: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.database_url, row_factory=dict_row, connect_timeout=5) as conn:
            return conn.execute(query.encode(), params).fetchall()


@contextmanager
def store_stack(
    folder: Path, *, latency_ms: int = 300, extra_env: dict[str, str] | None = None
) -> Iterator[StoreStack]:
    """The stack on stores of its own (removed afterwards)."""
    postgres, cache = OwnPostgres().start(), OwnRedis().start()
    database_url = postgres.database_url("promptlab")
    answer_log = folder / "answers.log"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": cache.url,
        "PROMPTLAB_FAKE_LATENCY_MS": str(latency_ms),
        "PROMPTLAB_FAKE_ANSWER_LOG": str(answer_log),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "PROMPTLAB_RATE_LIMIT_GENERATE": "100000",  # one client address sends the whole load
        **(extra_env or {}),
    }
    try:
        with running_stack(folder / "data", extra_env=env) as base:
            yield StoreStack(
                base=base,
                key=dev_key(folder / "data"),
                postgres=postgres,
                redis=cache,
                database_url=database_url,
                answer_log=answer_log,
                log=folder / "data" / "local.log",
            )
    finally:
        cache.remove()
        postgres.remove()


@dataclass
class FaultRun:
    """What clients saw and how the accepted jobs ended."""

    answers: collections.Counter[int] = field(default_factory=collections.Counter)
    no_answer: int = 0  # requests that timed out or lost their connection
    refusals: collections.Counter[str] = field(default_factory=collections.Counter)  # error messages seen
    without_retry_after: int = 0  # refusals that did not say when to come back
    accepted: list[str] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    stores_back_at: float = 0.0  # seconds after the start when the last store came back
    ended_after: float | None = None  # seconds after that until every accepted job had ended (None: never)
    by_status: dict[str, int] = field(default_factory=dict)
    answered_twice: int = 0  # answers the provider gave more than once for one prompt (a job paid twice)
    billed_twice: int = 0  # jobs with more than one billed success in their attempts
    interrupted: int = 0

    def figures(self) -> dict[str, Any]:
        return {
            "answers": dict(sorted(self.answers.items())),
            "no_answer": self.no_answer,
            "refusals": dict(self.refusals),
            "without_retry_after": self.without_retry_after,
            "accepted": len(self.accepted),
            "jobs": self.by_status,
            "ended_within_s_of_last_store_back": None if self.ended_after is None else round(self.ended_after, 1),
            "answered_twice": self.answered_twice,
            "billed_twice": self.billed_twice,
            "interrupted_attempts": self.interrupted,
            "timeline": [f"{at:.1f}s {what}" for at, what in self.events],
        }


def run(stack: StoreStack, *, rate: float, seconds: float, timeline: list[Event], wait_limit: float) -> FaultRun:
    """Submit `rate` jobs a second for `seconds` while `timeline` breaks and mends the stores; then follow
    every accepted job until it ends or `wait_limit` seconds after the last event pass."""
    status, made = stack.call("POST", "/templates", {"name": f"faults-{uuid.uuid4().hex[:8]}", "body": "Say {{ x }}"})
    assert status == 201, made
    template_id = made["id"]
    result = FaultRun()
    lock = threading.Lock()
    started = time.monotonic()

    def submit(n: int) -> None:
        time.sleep(max(0.0, started + n / rate - time.monotonic()))
        try:
            code, body, headers = stack.exchange(
                "POST", "/generate", {"templateId": template_id, "input": uuid.uuid4().hex}, 40
            )
        except OSError:
            with lock:
                result.no_answer += 1
            return
        with lock:
            result.answers[code] += 1
            if code in (200, 202):
                result.accepted.append(body["id"])
            else:
                result.refusals[f"{code} {body['error']['message']}"] += 1
                result.without_retry_after += "Retry-After" not in headers

    def play() -> None:
        for at, what, action in timeline:
            time.sleep(max(0.0, started + at - time.monotonic()))
            action()
            result.events.append((time.monotonic() - started, what))

    player = threading.Thread(target=play)
    player.start()
    with ThreadPoolExecutor(max_workers=64) as clients:
        list(clients.map(submit, range(int(rate * seconds))))
    player.join()
    result.stores_back_at = result.events[-1][0] if result.events else 0.0
    deadline = started + result.stores_back_at + wait_limit
    while time.monotonic() < deadline:
        try:
            open_jobs = stack.sql(
                "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND status IN ('queued', 'processing')",
                result.accepted,
            )[0]["n"]
        except psycopg.OperationalError:
            open_jobs = -1
        if open_jobs == 0:
            result.ended_after = time.monotonic() - started - result.stores_back_at
            break
        time.sleep(0.25)
    rows = stack.sql("SELECT status, count(*) AS n FROM jobs WHERE id = ANY(%s) GROUP BY status", result.accepted)
    result.by_status = {r["status"]: r["n"] for r in rows}
    answers = stack.answer_log.read_text().splitlines() if stack.answer_log.exists() else []
    result.answered_twice = sum(n - 1 for n in collections.Counter(answers).values() if n > 1)
    result.billed_twice = stack.sql(
        "SELECT count(*) AS n FROM (SELECT job_id FROM job_attempts WHERE job_id = ANY(%s)"
        " AND outcome IN ('succeeded', 'discarded') GROUP BY job_id HAVING count(*) > 1) AS twice",
        result.accepted,
    )[0]["n"]
    result.interrupted = stack.sql(
        "SELECT count(*) AS n FROM job_attempts WHERE job_id = ANY(%s) AND outcome = 'interrupted'", result.accepted
    )[0]["n"]
    return result


def database_crash(stack: StoreStack, *, at: float, down_for: float) -> list[Event]:
    """Postgres stopped at once at `at` (a failover), back `down_for` seconds later."""
    return [(at, "postgres crashed", stack.postgres.crash), (at + down_for, "postgres back", stack.postgres.start)]


def cache_loss(stack: StoreStack, *, at: float, down_for: float) -> list[Event]:
    """Redis killed at `at`, an empty one in its place `down_for` seconds later."""
    return [(at, "redis killed", stack.redis.kill), (at + down_for, "redis back empty", stack.redis.start)]
