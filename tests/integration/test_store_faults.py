"""A store failing under a record: the job comes back within seconds, spends no attempt and no receive,
is taken over on its claim, and is never paid for twice; SQS refusing a send leaves no job behind."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptlab.core.errors import DependencyUnavailable
from promptlab.db import attempts_repo, jobs_repo
from promptlab.db.connection import close_all, connection
from promptlab.infra.job_queue import JobQueue, get_queue
from promptlab.jobs import worker
from promptlab.jobs.sweeper import sweep
from promptlab.local.runner import LocalRunner
from promptlab.models.jobs import Handback, JobMessage
from tests.support import SetEnv, drain_queues, generate, get_job, make_poller, purge_queues, queued_messages, rows

DEAD_DATABASE = "postgresql://postgres@127.0.0.1:9/gone"


def normal_poller(runner: LocalRunner) -> Any:
    assert runner.stack is not None
    return make_poller(runner, next(m for m in runner.stack.mappings if m.queue_logical_id == "JobQueueNormal"))


@pytest.fixture
def database_down(runner: LocalRunner, set_env: SetEnv) -> Iterator[Any]:
    """Call it to make the database unreachable for this process (new connections refused at once, idle
    ones dropped); it comes back when the test ends or when the returned function is called again."""
    real = runner.database_url

    def down(is_down: bool = True) -> None:
        set_env(DATABASE_URL=DEAD_DATABASE if is_down else real, PROMPTLAB_DB_CONNECT_WAIT_SECONDS="0")
        close_all()

    yield down
    down(False)


def wait_for_messages(
    runner: LocalRunner, queue: str, seconds: float = 5, job_id: str | None = None
) -> list[dict[str, Any]]:
    """The queue's visible messages once there are some (only `job_id`'s, when given: a message another test
    delayed may come back on the same queue meanwhile)."""
    deadline = time.monotonic() + seconds
    while not (found := [m for m in queued_messages(runner, queue) if job_id is None or job_id in m["Body"]]):
        assert time.monotonic() < deadline, f"nothing came back on {queue}"
        time.sleep(0.1)
    return found


def run_until_ended(runner: LocalRunner, job_id: str, seconds: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while (job := get_job(runner, job_id))["status"] in {"queued", "processing"}:
        assert time.monotonic() < deadline, job
        drain_queues(runner)
        time.sleep(0.2)
    return job


def attempts_of(job_id: str) -> list[tuple[int, str]]:
    found = rows("SELECT n, outcome FROM job_attempts WHERE job_id = %s ORDER BY n", job_id)
    return [(r["n"], r["outcome"]) for r in found]


def test_a_record_whose_database_is_down_comes_back_in_seconds_without_spending_a_receive(
    clean_queues: LocalRunner, template: dict[str, Any], database_down: Any
) -> None:
    # Given a queued job, and its database unreachable when the worker receives it
    made = generate(clean_queues, template)
    database_down()
    # When the worker handles the record
    assert normal_poller(clean_queues).poll_once(wait_seconds=0) == 1
    # Then the job's message is back on the queue within seconds, a new message (received once: by this
    # look), carrying how often it waited
    back = wait_for_messages(clean_queues, "JobQueueNormal", job_id=made["id"])
    assert len(back) == 1 and back[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    message = JobMessage.model_validate_json(back[0]["Body"])
    assert message.job_id == made["id"] and message.handback == Handback(waits=1)
    # And once the database is back, the job runs on its first attempt
    database_down(False)
    done = run_until_ended(clean_queues, made["id"])
    assert done["status"] == "completed" and done["attempts"] == 1


def test_a_job_claimed_just_before_its_database_failed_is_taken_over_on_the_same_attempt(
    clean_queues: LocalRunner, template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker that claims a job and then loses its database before calling the provider
    made = generate(clean_queues, template)
    real_version = worker._version
    failures = [DependencyUnavailable("the database is unreachable", details={"dependency": "postgres"})]

    def version_once_failing(job: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_version(job)

    monkeypatch.setattr(worker, "_version", version_once_failing)
    assert normal_poller(clean_queues).poll_once(wait_seconds=0) == 1
    held = rows("SELECT status, attempts, holder, lease_until > now() AS leased FROM jobs WHERE id = %s", made["id"])[0]
    assert held["status"] == "processing" and held["leased"]
    # Then the message that comes back names the claim, and the next delivery takes the job over at once
    # (not after its lease), on the same attempt: the provider was never called
    back = JobMessage.model_validate_json(
        wait_for_messages(clean_queues, "JobQueueNormal", job_id=made["id"])[0]["Body"]
    )
    assert back.handback == Handback(holder=held["holder"], called=False, waits=1)
    done = run_until_ended(clean_queues, made["id"], seconds=10)
    assert done["status"] == "completed" and done["attempts"] == 1
    assert attempts_of(made["id"]) == [(1, "succeeded")]


def test_a_stale_handback_never_takes_a_job_another_worker_holds(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    # Given a job held by a worker's claim, and an old handback naming another claim
    made = generate(clean_queues, template)
    with connection() as conn:
        assert jobs_repo.claim_job(conn, job_id=made["id"], lease_seconds=90, token="current") is not None
        stale = jobs_repo.claim_job(
            conn, job_id=made["id"], lease_seconds=90, token="thief", handback=Handback(holder="earlier", waits=1)
        )
    # Then the stale one cannot claim it, and the holder keeps it
    assert stale is None
    assert rows("SELECT holder FROM jobs WHERE id = %s", made["id"])[0]["holder"] == "current"


def test_an_answer_is_saved_once_the_database_is_back_and_paid_for_once(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    # Given a provider whose every answer is logged, and a database that refuses the first two saves
    answers = tmp_path / "answers.log"
    set_env(PROMPTLAB_FAKE_ANSWER_LOG=str(answers))
    made = generate(clean_queues, template)
    real_complete = jobs_repo.complete_job
    refusals = 2

    def complete_after_a_restart(conn: Any, **kwargs: Any) -> Any:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise DependencyUnavailable("the database is unreachable", details={"dependency": "postgres"})
        return real_complete(conn, **kwargs)

    monkeypatch.setattr(jobs_repo, "complete_job", complete_after_a_restart)
    # When the worker runs the job
    drain_queues(clean_queues)
    # Then the answer it holds is saved when the database answers again: one call, one attempt
    done = get_job(clean_queues, made["id"])
    assert done["status"] == "completed" and done["attempts"] == 1 and refusals == 0
    assert len(answers.read_text().splitlines()) == 1
    assert attempts_of(made["id"]) == [(1, "succeeded")]


def test_an_answer_that_cannot_be_saved_in_time_leaves_an_interrupted_attempt_and_the_job_runs_again(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker that gives up saving at once, and a database that refuses the first save
    set_env(PROMPTLAB_STORE_WRITE_WAIT_SECONDS="0")
    made = generate(clean_queues, template)
    real_complete = jobs_repo.complete_job
    refusals = [DependencyUnavailable("the database is unreachable", details={"dependency": "postgres"})]

    def complete_once_failing(conn: Any, **kwargs: Any) -> Any:
        if refusals:
            raise refusals.pop()
        return real_complete(conn, **kwargs)

    monkeypatch.setattr(jobs_repo, "complete_job", complete_once_failing)
    # When the job runs and comes back
    done = run_until_ended(clean_queues, made["id"], seconds=10)
    # Then the first attempt shows it may have been billed, and the second answered
    assert done["status"] == "completed" and done["attempts"] == 2
    assert attempts_of(made["id"]) == [(1, "interrupted"), (2, "succeeded")]


class RefusingQueue:
    """The real queue adapter, with some of its operations answering as SQS does when it throttles or
    fails (a botocore error, which the adapter turns into `DependencyUnavailable`)."""

    def __init__(self, real: JobQueue, refuse: set[str]) -> None:
        self.real, self.refuse = real, refuse
        self.refused: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name in self.refuse:

            def refused(**_: Any) -> None:
                self.refused.append(name)
                raise DependencyUnavailable("the job queue is unreachable", details={"dependency": "sqs"})

            return refused
        return getattr(self.real, name)


def test_when_sqs_refuses_both_the_new_message_and_the_delay_the_sweeper_sends_the_job(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a provider failing once with a 503, and SQS refusing the retry's delay and any new message
    set_env(PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]", PROMPTLAB_THROTTLE="false")
    made = generate(clean_queues, template)
    from promptlab.providers import fake
    from promptlab.providers.base import error_for_status

    real_generate = fake.FakeProvider.generate
    script = [error_for_status(503, "overloaded for a moment")]

    def scripted(self: fake.FakeProvider, call: Any) -> Any:
        if script:
            raise script.pop()
        return real_generate(self, call)

    monkeypatch.setattr(fake.FakeProvider, "generate", scripted)
    refusing = RefusingQueue(get_queue(), {"delay", "park"})
    monkeypatch.setattr(worker, "get_queue", lambda: refusing)
    monkeypatch.setattr("promptlab.infra.sqs_batch.get_queue", lambda: refusing)
    assert normal_poller(clean_queues).poll_once(wait_seconds=0) == 1
    # Then the job is queued and marked unsent (its copy would wait out the visibility timeout)
    current = rows("SELECT status, attempts, enqueued_at FROM jobs WHERE id = %s", made["id"])[0]
    assert (current["status"], current["attempts"], current["enqueued_at"]) == ("queued", 1, None)
    assert "delay" in refusing.refused
    # And the next sweep sends it (10 s after it was made), and it completes on its second attempt
    rows("UPDATE jobs SET created_at = created_at - interval '1 minute' WHERE id = %s RETURNING id", made["id"])
    monkeypatch.undo()
    assert sweep().sent >= 1
    done = run_until_ended(clean_queues, made["id"])
    assert done["status"] == "completed" and done["attempts"] == 2


def test_when_sqs_refuses_the_new_message_the_received_copy_waits_seconds_instead(
    clean_queues: LocalRunner, template: dict[str, Any], database_down: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a database down and SQS refusing new messages (but not visibility changes)
    made = generate(clean_queues, template)
    database_down()
    refusing = RefusingQueue(get_queue(), {"park"})
    monkeypatch.setattr(worker, "get_queue", lambda: refusing)
    assert normal_poller(clean_queues).poll_once(wait_seconds=0) == 1
    # Then the received copy itself is visible again within seconds (one receive counted)
    back = wait_for_messages(clean_queues, "JobQueueNormal", job_id=made["id"])
    assert len(back) == 1 and back[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert json.loads(back[0]["Body"]) == {"jobId": made["id"], "v": 1}
    database_down(False)
    assert run_until_ended(clean_queues, made["id"])["attempts"] == 1


def test_an_intake_record_whose_database_is_down_comes_back_in_seconds(
    clean_queues: LocalRunner, template: dict[str, Any], database_down: Any
) -> None:
    # Given a submission on the intake queue, and the database down when the intake function reads it
    sqs = clean_queues.sqs_client()
    url = sqs.get_queue_url(QueueName="promptlab-local-intake")["QueueUrl"]
    body = {"templateId": template["id"], "input": "while the database restarts"}
    key: dict[str, Any] = {"apiKey": {"DataType": "String", "StringValue": clean_queues.dev_key}}
    sent = sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body), MessageAttributes=key)
    database_down()
    assert drain_queues(clean_queues, function="IntakeFunction", rounds=1) == 1
    # Then the record is visible again within seconds, not after the queue's 180 s visibility timeout
    assert len(wait_for_messages(clean_queues, "IntakeQueue")) == 1
    database_down(False)
    assert drain_queues(clean_queues, function="IntakeFunction") == 1
    assert len(rows("SELECT id FROM jobs WHERE source_message_id = %s", sent["MessageId"])) == 1


def test_a_worker_that_died_while_the_database_was_down_is_recovered_once_it_is_back(
    clean_queues: LocalRunner, template: dict[str, Any], database_down: Any
) -> None:
    # Given a job whose worker died mid-call (its lease ran out), and the database down when the sweeper runs
    made = generate(clean_queues, template)
    purge_queues(clean_queues)  # the delivery was lost with the worker
    with connection() as conn:
        claimed = jobs_repo.claim_job(conn, job_id=made["id"], lease_seconds=90, token="died")
        assert claimed is not None
        attempts_repo.start_attempt(conn, job_id=made["id"], n=claimed.attempts)
        conn.execute("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = %s", (made["id"],))
    database_down()
    with pytest.raises(DependencyUnavailable):
        sweep()
    # When the database is back, the next sweep recovers the lease, and the job runs again
    database_down(False)
    assert sweep().recovered >= 1
    done = run_until_ended(clean_queues, made["id"])
    assert done["status"] == "completed" and done["attempts"] == 2
    assert attempts_of(made["id"]) == [(1, "interrupted"), (2, "succeeded")]
