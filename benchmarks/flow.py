"""Flow control under conditions a provider really creates (`./dev bench flow`; figures, not tests).

Each scenario runs `promptlab local` in a subprocess on its own database, against the fake provider:
- healthy: 350 jobs as the fault report sent them (300 `POST /generate` over HTTP from 4 client threads, 50 over the
  intake queue, all at once), 100 ms a call, no faults (the yardstick for the next one);
- faults: the same 350 jobs with 30 % of calls failing as 429 (retry-after 1 s), 500, 503 or 529, with flow
  control and without it (`PROMPTLAB_THROTTLE=false`: the retry delays alone, the ratio's floor);
- healthy_and_faults_batched: the same two runs with the 350 jobs sent in 4 `POST /generate/batch` requests;
- outage: 100 jobs while every call answers 529 for 30 s, then recovery;
- cost: 100 jobs waiting, 2 s a call, a provider that reports a budget of 4,000 requests a minute in its
  headers (as an Anthropic tier-4 account does): worker GB-seconds per job, read off the REPORT lines;
- miss: `POST /generate` then `GET /jobs/{id}?wait=20`, the provider answering at once, one at a time;
- experiment: 2 variants × 1,000 dataset rows with the `contains` scorer, to completed, then the CSV;
- retry_floor: not a run but a model: the faulted run's shortest possible end under the retry delays,
  for an ideal worker, as a ratio to a healthy run of a given length (why the ratio depends on the machine).
Needs the Postgres and Redis of DATABASE_URL / REDIS_URL (the defaults on this machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from promptlab.core.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL
from promptlab.local.services import drop_database, free_port, stop_process, with_database

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

ROOT = Path(__file__).resolve().parent.parent
REPORT = re.compile(r"^\[WorkerFunction\] REPORT .*Billed Duration: (\d+) ms\tMemory Size: (\d+) MB", re.M)


@dataclass
class Stack:
    base: str
    key: str
    database_url: str
    folder: Path

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def sql(self, query: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            return conn.execute(query.encode(), params).fetchall()

    def submit(self, count: int, template_id: str, priority: str = "normal") -> list[str]:
        ids: list[str] = []
        for start in range(0, count, 100):
            items = [
                {"templateId": template_id, "input": uuid.uuid4().hex, "priority": priority}
                for _ in range(min(100, count - start))
            ]
            ids += [item["jobId"] for item in self.call("POST", "/generate/batch", {"items": items})["items"]]
        return ids

    def submit_mixed(self, template_id: str, http: int = 300, intake: int = 50) -> list[str]:
        """The fault run's submission: `http` single `POST /generate` requests from 4 client threads and, at the
        same time, `intake` messages on the intake queue (a service with boto3), as one job each."""
        import boto3

        state = json.loads((self.folder / "local-stack.json").read_text())
        sqs = boto3.client(
            "sqs", region_name="us-east-1", endpoint_url=state["AWS_ENDPOINT_URL"],
            aws_access_key_id=state.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=state.get("AWS_SECRET_ACCESS_KEY", "local"),
        )  # fmt: skip
        url = sqs.get_queue_url(QueueName="promptlab-local-intake")["QueueUrl"]

        def one(_: int) -> str:
            return str(self.call("POST", "/generate", {"templateId": template_id, "input": uuid.uuid4().hex})["id"])

        with ThreadPoolExecutor(4) as clients:
            posted = clients.map(one, range(http))
            message_ids: list[str] = []
            for start in range(0, intake, 10):
                entries: list[SendMessageBatchRequestEntryTypeDef] = [
                    {
                        "Id": str(n),
                        "MessageBody": json.dumps({"templateId": template_id, "input": uuid.uuid4().hex}),
                        "MessageAttributes": {"apiKey": {"DataType": "String", "StringValue": self.key}},
                    }
                    for n in range(min(10, intake - start))
                ]
                message_ids += [
                    m["MessageId"] for m in sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]
                ]
            ids = list(posted)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the intake function makes their jobs
            found = self.sql("SELECT id FROM jobs WHERE source_message_id = ANY(%s)", message_ids)
            if len(found) == len(message_ids):
                break
            time.sleep(0.05)
        return ids + [row["id"] for row in found]

    def wait_done(self, ids: list[str], limit_seconds: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < limit_seconds:
            open_jobs = self.sql(
                "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND status IN ('queued', 'processing')", ids
            )[0]["n"]
            if open_jobs == 0:
                break
            time.sleep(0.25)
        return time.monotonic() - started

    def template(self) -> str:
        made = self.call("POST", "/templates", {"name": uuid.uuid4().hex, "body": "Say {{ x }}"})
        return str(made["id"])


@contextmanager
def stack(env: dict[str, str], args: tuple[str, ...] = ()) -> Iterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="promptlab-flow-"))
    database_url = with_database(
        os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL), f"pl_flow_{uuid.uuid4().hex[:8]}"
    )
    port = free_port()
    prefix = f"flow:{uuid.uuid4().hex[:8]}:"
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PROMPTLAB_DATA_DIR": str(folder),
        "PROMPTLAB_REDIS_PREFIX": prefix,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **env,
    }
    log = (folder / "runner.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "promptlab.cli", "local", "--port", str(port), *args],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        key = (folder / "dev-api-key").read_text().strip()
        yield Stack(base=base, key=key, database_url=database_url, folder=folder)
    finally:
        stop_process(process)
        log.close()
        drop_database(database_url)
        _forget_redis_keys(prefix)


def _forget_redis_keys(prefix: str) -> None:
    """A run leaves nothing behind in Redis (its keys share the run's prefix)."""
    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL, socket_connect_timeout=2)
    with contextlib.suppress(redis.RedisError, OSError):
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


def outcome(s: Stack, ids: list[str], seconds: float) -> dict[str, Any]:
    rows = s.sql(
        "SELECT status, count(*) AS n, sum(attempts) AS attempts,"
        " count(*) FILTER (WHERE status = 'failed' AND attempts < max_attempts"
        "   AND (error->>'retryable')::boolean) AS failed_with_attempts_left"
        " FROM jobs WHERE id = ANY(%s) GROUP BY status",
        ids,
    )
    by = {r["status"]: r for r in rows}
    completed = by.get("completed", {}).get("n", 0)
    return {
        "jobs": len(ids),
        "completed": completed,
        "completed_share": round(completed / len(ids), 4),
        "failed": by.get("failed", {}).get("n", 0),
        "failed_with_attempts_left": sum(r["failed_with_attempts_left"] for r in rows),
        "attempts": sum(r["attempts"] or 0 for r in rows),
        "dead_letters": s.sql("SELECT count(DISTINCT job_id) AS n FROM dead_letters")[0]["n"],
        "not_ended": len(ids) - sum(r["n"] for r in rows if r["status"] in {"completed", "failed"}),
        "billed_twice": s.sql(  # more than one answer paid for (a second success, or one dropped as a duplicate)
            "SELECT count(*) AS n FROM (SELECT job_id FROM job_attempts WHERE job_id = ANY(%s)"
            " AND outcome IN ('succeeded', 'discarded') GROUP BY job_id HAVING count(*) > 1) AS twice",
            ids,
        )[0]["n"],
        "seconds": round(seconds, 1),
    }


def _healthy_and_faults(submit: Callable[[Stack, str], list[str]], env: dict[str, str]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    faults = {"PROMPTLAB_FAKE_FAIL_STATUS": "429,500,503,529", "PROMPTLAB_FAKE_FAIL_RATE": "0.3"}
    for name, extra in (
        ("healthy", {}),
        ("faults_30pct", faults),
        # The yardstick for what flow control costs: the same faults with every wait for a route turned off
        # (the retry delays alone; a 429 still waits its retry-after)
        ("faults_30pct_without_flow_control", {**faults, "PROMPTLAB_THROTTLE": "false"}),
    ):
        with stack({"PROMPTLAB_FAKE_LATENCY_MS": "100", **env, **extra}) as s:
            template = s.template()
            started = time.monotonic()
            ids = submit(s, template)
            submitted = time.monotonic() - started
            s.wait_done(ids, 600)
            figures[name] = {**outcome(s, ids, time.monotonic() - started), "submitted_in": round(submitted, 1)}
    for name in ("faults_30pct", "faults_30pct_without_flow_control"):
        figures[f"{name}_time_ratio"] = round(figures[name]["seconds"] / figures["healthy"]["seconds"], 2)
    return figures


def healthy_and_faults() -> dict[str, Any]:
    """The fault run: 300 jobs over HTTP and 50 over the intake queue, healthy, then with 30 % faults."""
    # 300 requests in seconds from one address: a deployment sized for that traffic (the default is 100 a minute)
    return _healthy_and_faults(lambda s, template: s.submit_mixed(template), {"PROMPTLAB_RATE_LIMIT_GENERATE": "10000"})


def healthy_and_faults_batched() -> dict[str, Any]:
    """The same with the 350 jobs sent in 4 batch requests (a shorter healthy run: the ratio's floor rises)."""
    return _healthy_and_faults(lambda s, template: s.submit(350, template), {})


def outage() -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="promptlab-outage-"))
    switch, calls = folder / "outage", folder / "calls.log"
    switch.touch()
    with stack({"PROMPTLAB_FAKE_OUTAGE_FILE": str(switch), "PROMPTLAB_FAKE_CALL_LOG": str(calls)}) as s:
        template = s.template()
        started = time.time()
        ids = s.submit(100, template)
        time.sleep(max(0.0, 30 - (time.time() - started)))
        switch.unlink()
        ended = time.time()
        s.wait_done(ids, 300)
        first_done = s.sql("SELECT min(completed_at) AS t FROM jobs WHERE id = ANY(%s) AND status = 'completed'", ids)
        last_done = s.sql("SELECT max(completed_at) AS t FROM jobs WHERE id = ANY(%s) AND status = 'completed'", ids)
        stamps = [float(line.split()[0]) for line in calls.read_text().splitlines()]
        during = [t for t in stamps if started <= t < ended]
        per_second: dict[int, int] = {}
        for t in during:
            per_second[int(t - started)] = per_second.get(int(t - started), 0) + 1
        steady = [n for second, n in per_second.items() if second >= 5]
        result = outcome(s, ids, 0)
        result.update(
            outage_seconds=round(ended - started, 1),
            calls_during_outage=len(during),
            calls_in_first_5_s=sum(n for second, n in per_second.items() if second < 5),
            most_calls_in_a_second_after_5_s=max(steady, default=0),
            first_completion_after_recovery_s=round(first_done[0]["t"].timestamp() - ended, 1),
            all_done_after_recovery_s=round(last_done[0]["t"].timestamp() - ended, 1),
            most_attempts_on_one_job=s.sql("SELECT max(attempts) AS n FROM jobs WHERE id = ANY(%s)", ids)[0]["n"],
        )
        result.pop("seconds")
        return result


def cost() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for priority in ("normal", "low"):
        with stack({"PROMPTLAB_FAKE_LATENCY_MS": "2000", "PROMPTLAB_FAKE_RATE_LIMIT_RPM": "4000"}) as s:
            template = s.template()
            ids = s.submit(100, template, priority)
            seconds = s.wait_done(ids, 600)
            time.sleep(1)  # the last REPORT lines
            reports = REPORT.findall((s.folder / "runner.log").read_text())
            gb_s = sum(int(ms) / 1000 * int(mb) / 1024 for ms, mb in reports)
            figures[priority] = {
                **outcome(s, ids, seconds),
                "worker_invocations": len(reports),
                "gb_s_per_job": round(gb_s / len(ids), 4),
            }
    return figures


def miss() -> dict[str, Any]:
    with stack({}) as s:
        template = s.template()
        samples = []
        for _ in range(60):
            begin = time.perf_counter()
            job = s.call("POST", "/generate", {"templateId": template, "input": uuid.uuid4().hex, "cache": False})
            done = s.call("GET", f"/jobs/{job['id']}?wait=20")
            assert done["status"] == "completed", done
            samples.append(time.perf_counter() - begin)
        samples = samples[10:]  # warm
        return {
            "p50_ms": round(statistics.median(samples) * 1000, 1),
            "p90_ms": round(sorted(samples)[int(len(samples) * 0.9)] * 1000, 1),
        }


def experiment(rows: int = 1_000) -> dict[str, Any]:
    """The experiment target: 2 variants × 1,000 rows with the `contains` scorer, from `POST /experiments` to
    completed, then the joined results as CSV."""
    with stack({}) as s:
        template = s.template()
        lines = "\n".join(json.dumps({"input": {"x": f"item {i}"}, "expected": f"item {i}"}) for i in range(rows))
        dataset = s.call("POST", "/datasets", {"name": uuid.uuid4().hex, "format": "jsonl", "content": lines})
        body = {
            "datasetId": dataset["id"],
            "variants": [{"template": template}, {"template": template, "params": {"maxTokens": 100}}],
            "scorers": [{"type": "contains"}],
        }
        begin = time.perf_counter()
        started = s.call("POST", "/experiments", body)
        created = time.perf_counter() - begin
        found = started
        while found["status"] == "running" and time.perf_counter() - begin < 300:
            time.sleep(0.5)
            found = s.call("GET", f"/experiments/{started['id']}")
        total = time.perf_counter() - begin
        download = time.perf_counter()
        req = urllib.request.Request(f"{s.base}/experiments/{started['id']}/results?format=csv&limit=5000")
        req.add_header("Authorization", f"Bearer {s.key}")
        with urllib.request.urlopen(req, timeout=60) as answer:
            csv_bytes = len(answer.read())
        return {
            "jobs": rows * 2,
            "status": found["status"],
            "completed": sum(v["completed"] for v in found["variants"]),
            "start_request_s": round(created, 2),
            "to_completed_s": round(total, 1),
            "csv_download_s": round(time.perf_counter() - download, 2),
            "csv_bytes": csv_bytes,
        }


def retry_floor(trials: int = 200) -> dict[str, Any]:
    """The ratio an ideal worker would reach under the fault run's faults: no flow control, no queue, first attempts
    spread evenly over the healthy run, 100 ms calls; a 429 costs its retry-after (1 s) and no attempt, any
    other fault an attempt and the retry backoff, plus `pickup` seconds from a message turning visible to
    its call. Median over `trials` simulated runs of 350 jobs, and how many of them end within 2.5×."""
    import random

    from promptlab.core.settings import get_settings

    backoff = get_settings().retry_backoff_seconds
    rng = random.Random(15)

    def one_run(healthy: float, pickup: float) -> float:
        ends = []
        for _ in range(350):
            t, attempts = rng.uniform(0, healthy - 0.1), 0
            while True:
                t += 0.1
                if rng.random() >= 0.3:
                    break
                if rng.random() < 0.25:  # a 429 of the four statuses
                    t += 1.0
                    continue
                attempts += 1
                if attempts == 3:
                    break
                t += backoff[min(attempts, len(backoff)) - 1] + pickup
            ends.append(t)
        return max(ends) / healthy

    figures: dict[str, Any] = {}
    for healthy in (3.5, 4.0, 5.0):
        for pickup in (0.05, 0.15, 0.3):
            ratios = [one_run(healthy, pickup) for _ in range(trials)]
            figures[f"healthy_{healthy}s_pickup_{int(pickup * 1000)}ms"] = {
                "median_ratio": round(statistics.median(ratios), 2),
                "share_within_2_5x": round(sum(r <= 2.5 for r in ratios) / trials, 2),
            }
    return figures


def main() -> int:
    scenarios = {
        "healthy_and_faults": healthy_and_faults, "healthy_and_faults_batched": healthy_and_faults_batched,
        "outage": outage, "cost": cost, "miss": miss,
        "experiment": experiment, "retry_floor": retry_floor,
    }  # fmt: skip
    chosen = sys.argv[1:] or list(scenarios)
    figures = {name: scenarios[name]() for name in chosen}
    print(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
