"""Chaos: 1,000 jobs through `promptlab local` with 30 % retryable faults, timeouts, duplicate deliveries,
and the worker process killed mid-run. Bounded: it fails rather than waits forever."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg.rows import dict_row

from promptlab.core.settings import DEFAULT_REDIS_URL as DEFAULT_REDIS
from promptlab.local.services import (
    drop_database,
    free_port,
    postgres_answers,
    redis_answers,
    stop_process,
    with_database,
)
from tests.support import ROOT, redis_prefix
from tests.support.local_stack import KEYS, dev_key, request

pytestmark = pytest.mark.e2e

JOBS = 1_000
WAVE = 200
DEADLINE_SECONDS = 240  # under pytest-timeout (300 s), so a stuck run fails with its job counts


class Stack:
    """moto's SQS server in its own process (it must outlive the killed runner) and the runner."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sqs_port = free_port()
        self.port = free_port()
        base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/promptlab")
        self.env = {
            **os.environ,
            "DATABASE_URL": with_database(base, f"promptlab_chaos_{uuid.uuid4().hex[:10]}"),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.sqs_port}",
            "AWS_ACCESS_KEY_ID": "chaos",
            "AWS_SECRET_ACCESS_KEY": "chaos",
            "PROMPTLAB_DATA_DIR": str(folder / "data"),
            "PROMPTLAB_REDIS_PREFIX": redis_prefix("chaos"),
            "PROMPTLAB_FAKE_LATENCY_MS": "15",
            # The mix a provider really sends on a bad day: 429 (with retry-after 1 s), 500, 503, 529.
            "PROMPTLAB_FAKE_FAIL_STATUS": "429,500,503,529",
            "PROMPTLAB_FAKE_FAIL_RATE": "0.3",
            "PROMPTLAB_FAKE_TIMEOUT_RATE": "0.03",
            "PROMPTLAB_FAKE_ANSWER_LOG": str(folder / "answers.log"),
            "PROMPTLAB_RETRY_BACKOFF_SECONDS": "[0]",
            "PROMPTLAB_PROVIDER_TIMEOUT_SECONDS": "1",
            "PROMPTLAB_LEASE_MARGIN_SECONDS": "1",
            # Time runs 60× faster for the schedules here; a lost message is sent again after 15 s, not 5 min.
            "PROMPTLAB_LOST_MESSAGE_SECONDS": "15",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        self.database_url = self.env["DATABASE_URL"]  # until the runner says which it uses (maybe embedded)
        self.moto: subprocess.Popen[bytes] | None = None
        self.runner: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_moto(self) -> None:
        self.moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.sqs_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start_runner(self) -> None:
        self.runs += 1
        log = (self.folder / f"runner-{self.runs}.log").open("w")
        self.runner = subprocess.Popen(
            [
                sys.executable, "-m", "promptlab.cli", "local", "--port", str(self.port),
                "--schedule-speedup", "60", "--parameter-overrides", "JobVisibilityTimeout=3", "MaxReceiveCount=10",
            ],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(self.base, "GET", "/health")[0] == 200:
                    state = json.loads((self.folder / "data" / "local-stack.json").read_text())
                    self.database_url = state["DATABASE_URL"]
                    KEYS[self.base] = dev_key(self.folder / "data")
                    return
            except OSError:
                pass
            assert self.runner.poll() is None and time.monotonic() < deadline, "runner did not start"
            time.sleep(0.2)

    def kill_runner(self) -> None:
        assert self.runner is not None
        self.runner.send_signal(signal.SIGKILL)
        self.runner.wait()

    def stop(self) -> None:
        for process in (self.runner, self.moto):
            if process is not None:
                stop_process(process)

    def sql(self, query: str) -> list[dict[str, Any]]:
        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            return conn.execute(query.encode()).fetchall()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    chaos = Stack(tmp_path)
    if not (postgres_answers(chaos.env["DATABASE_URL"]) and redis_answers(os.environ.get("REDIS_URL", DEFAULT_REDIS))):
        # Killing the runner would also orphan the embedded servers it owns; this test needs real ones.
        pytest.skip("the chaos test needs a Postgres and a Redis that outlive the runner it kills")
    chaos.start_moto()
    try:
        yield chaos
    finally:
        chaos.stop()
        if postgres_answers(chaos.env["DATABASE_URL"]):
            drop_database(chaos.env["DATABASE_URL"])


def submit_wave(stack: Stack, template_id: str, count: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 100):
        items = [
            {"templateId": template_id, "input": f"topic {uuid.uuid4().hex}"} for _ in range(min(100, count - start))
        ]
        status, _, body = request(stack.base, "POST", "/generate/batch", {"items": items})
        assert status == 202, body
        ids += [item["jobId"] for item in body["items"]]
    return ids


def duplicate_some(stack: Stack, job_ids: list[str], share: float) -> int:
    """Send extra copies of some jobs' messages, as SQS's at-least-once delivery may."""
    sqs: Any = boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=stack.env["AWS_ENDPOINT_URL"],
        aws_access_key_id="chaos",
        aws_secret_access_key="chaos",
    )
    url = sqs.get_queue_url(QueueName="promptlab-local-jobs-normal")["QueueUrl"]
    chosen = random.sample(job_ids, int(len(job_ids) * share))
    for start in range(0, len(chosen), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps({"jobId": j, "v": 1}, separators=(",", ":"))}
            for i, j in enumerate(chosen[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    return len(chosen)


def wait_until(stack: Stack, condition: str, deadline: float) -> None:
    while not stack.sql(condition)[0]["done"]:
        assert time.monotonic() < deadline, stack.sql("SELECT status, count(*) FROM jobs GROUP BY status")
        time.sleep(0.5)


def working(stack: Stack, *, seconds: float) -> bool:
    """True as soon as a job is being processed; False when none was seen for `seconds` (the wave is done:
    a fast worker can empty a wave between two slow polls, so this looks often and the next wave tries again)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if stack.sql("SELECT count(*) > 0 AS done FROM jobs WHERE status = 'processing'")[0]["done"]:
            return True
        time.sleep(0.01)
    return False


def test_a_thousand_jobs_survive_faults_duplicates_and_a_killed_worker(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    deadline = started + DEADLINE_SECONDS
    stack.start_runner()
    # maxTokens 100 → provider timeout 6 s, lease 7 s: a killed worker's jobs are taken over quickly.
    status, _, template = request(
        stack.base, "POST", "/templates", {"name": "chaos", "body": "Say {{ input }}", "defaults": {"maxTokens": 100}}
    )
    assert status == 201
    job_ids: list[str] = []
    duplicates = 0
    killed_in_flight = 0
    for wave in range(JOBS // WAVE):
        wave_ids = submit_wave(stack, template["id"], WAVE)
        job_ids += wave_ids
        duplicates += duplicate_some(stack, wave_ids, 0.1)
        if wave >= 2 and killed_in_flight == 0 and working(stack, seconds=10):
            # Kill the runner while it is working, then start a new one over the same queues and database.
            # (Counted after the kill: a job that finished just before it was not interrupted.)
            stack.kill_runner()
            killed_in_flight = stack.sql("SELECT count(*) AS n FROM jobs WHERE status = 'processing'")[0]["n"]
            stack.start_runner()
        else:
            wait_until(
                stack, "SELECT count(*) < 150 AS done FROM jobs WHERE status IN ('queued', 'processing')", deadline
            )
    wait_until(stack, "SELECT count(*) = 0 AS done FROM jobs WHERE status IN ('queued', 'processing')", deadline)
    wait_until(
        stack,
        "SELECT (SELECT count(DISTINCT job_id) FROM dead_letters) = (SELECT count(*) FROM jobs"
        " WHERE status = 'failed' AND error->>'message' LIKE 'attempts exhausted%') AS done",
        deadline,
    )

    by_status = {r["status"]: r["n"] for r in stack.sql("SELECT status, count(*) AS n FROM jobs GROUP BY status")}
    completed, failed = by_status.get("completed", 0), by_status.get("failed", 0)
    answers = len((stack.folder / "answers.log").read_text().splitlines())
    interrupted = stack.sql("SELECT count(*) AS n FROM job_attempts WHERE outcome = 'interrupted'")[0]["n"]
    succeeded = stack.sql("SELECT count(*) AS n FROM job_attempts WHERE outcome = 'succeeded'")[0]["n"]
    exhausted = stack.sql(
        "SELECT count(*) AS n FROM jobs WHERE status = 'failed' AND error->>'message' LIKE 'attempts exhausted%'"
    )[0]["n"]
    dead_letters = stack.sql("SELECT count(DISTINCT job_id) AS n FROM dead_letters")[0]["n"]
    attempts = stack.sql("SELECT sum(attempts) AS n FROM jobs")[0]["n"]
    figures = {
        "jobs": len(job_ids),
        "completed": completed,
        "failed": failed,
        "failed_exhausted": exhausted,
        "dead_letters": dead_letters,
        "provider_attempts": attempts,
        "provider_answers": answers,
        "interrupted_attempts": interrupted,
        "in_flight_when_killed": killed_in_flight,
        "duplicate_deliveries_sent": duplicates,
        "seconds": round(time.monotonic() - started, 1),
    }
    with capsys.disabled():  # the figures belong in every run's output, not only in failures
        print("\nchaos figures: " + json.dumps(figures))

    # None lost: every accepted job is in Postgres and ended completed or failed with a reason.
    assert len(set(job_ids)) == JOBS
    assert stack.sql("SELECT count(*) AS n FROM jobs")[0]["n"] == JOBS
    assert completed + failed == JOBS
    assert stack.sql("SELECT count(*) AS n FROM jobs WHERE status = 'failed' AND error->>'code' IS NULL")[0]["n"] == 0
    # No double billing: one succeeded attempt and one recorded cost per completed job.
    assert succeeded == completed
    unbilled = stack.sql(
        "SELECT count(*) AS n FROM jobs WHERE status = 'completed'"
        " AND (estimated_cost_usd IS NULL OR total_tokens IS NULL)"
    )
    assert unbilled[0]["n"] == 0
    # Every successful provider answer is a completed job or an interrupted attempt (the kill's victims);
    # duplicates never caused a second call.
    assert completed <= answers <= completed + interrupted
    assert killed_in_flight > 0 and interrupted > 0
    # Dead letters are exactly the jobs that ran out of attempts: waiting for a busy or paused provider
    # never spends an attempt or a receive, so no job with attempts left fails.
    assert dead_letters == exhausted > 0
    early = stack.sql(
        "SELECT count(*) AS n FROM jobs WHERE status = 'failed' AND attempts < max_attempts"
        " AND (error->>'retryable')::boolean"
    )
    assert early[0]["n"] == 0
    # 33 % of calls fail (30 % faults, 3 % timeouts), independently: with 3 attempts ~3.6 % of jobs (36 ± 6).
    assert failed <= 70
