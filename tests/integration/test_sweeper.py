"""SweeperFunction: jobs that never reached SQS, dead workers' leases, overdue jobs."""

import threading
from typing import Any

import pytest

from promptlab.db import attempts_repo, jobs_repo
from promptlab.db.connection import connection
from promptlab.jobs.sweeper import sweep
from promptlab.local.runner import LocalRunner
from tests.support import (
    SetEnv,
    call_api,
    drain_queues,
    generate,
    purge_queues,
    queued_messages,
    rows,
    sample_event,
    unique,
)


@pytest.fixture(autouse=True)
def no_other_tests_stragglers(runner: LocalRunner) -> None:
    """A sweep acts on the whole database: jobs other tests left queued (unsent, or with messages they purged)
    or with a lapsed lease are ended first, so each test here sees only what it made."""
    rows(
        "UPDATE jobs SET status = 'cancelled', completed_at = now() WHERE status = 'queued'"
        " OR (status = 'processing' AND lease_until < now() + interval '5 minutes') RETURNING id"
    )


def accept_while_sqs_is_down(runner: LocalRunner, template: dict[str, Any], set_env: SetEnv) -> str:
    from promptlab.infra.job_queue import get_queue

    set_env(JOB_QUEUE_NORMAL_URL="http://127.0.0.1:9/queue/gone")
    get_queue.cache_clear()
    body = {"templateId": template["id"], "input": unique("x")}
    answer = call_api(runner, "POST", "/generate", body=body)
    assert answer.status == 202 and answer.body["enqueuedAt"] is None
    set_env(JOB_QUEUE_NORMAL_URL=runner.stack.queue_urls["JobQueueNormal"] if runner.stack else "")
    get_queue.cache_clear()
    job_id: str = answer.body["id"]
    return job_id


def age(job_id: str, seconds: int) -> None:
    with connection() as conn:
        conn.execute(
            "UPDATE jobs SET created_at = created_at - make_interval(secs => %s) WHERE id = %s",
            (seconds, job_id),
        )


def test_a_job_that_never_reached_sqs_is_sent_and_completes(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    job_id = accept_while_sqs_is_down(clean_queues, template, set_env)
    assert clean_queues.invoke("SweeperFunction", sample_event("sweeper-schedule.json"))["sent"] == 0  # too young
    age(job_id, 120)
    report = clean_queues.invoke("SweeperFunction", sample_event("sweeper-schedule.json"))
    assert report["sent"] == 1
    assert drain_queues(clean_queues) == 1
    assert call_api(clean_queues, "GET", f"/jobs/{job_id}").body["status"] == "completed"


def test_two_sweeps_at_once_send_each_job_once(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    job_ids = [accept_while_sqs_is_down(clean_queues, template, set_env) for _ in range(5)]
    for job_id in job_ids:
        age(job_id, 120)
    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each of these jobs sent exactly once (the sweep also sends other tests' minute-old unsent jobs)
    bodies = [m["Body"] for m in queued_messages(clean_queues, "JobQueueNormal")]
    assert [bodies.count(f'{{"jobId":"{j}","v":1}}') for j in job_ids] == [1] * len(job_ids)


def claim_and_crash(job_id: str) -> None:
    """A worker claims the job, writes its attempt, then vanishes: its lease runs out."""
    with connection() as conn:
        claimed = jobs_repo.claim_job(conn, job_id=job_id, lease_seconds=90, token="another-worker")
        assert claimed is not None
        attempts_repo.start_attempt(conn, job_id=job_id, n=claimed.attempts)
        conn.execute("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = %s", (job_id,))


def test_an_expired_lease_is_recovered_and_the_interrupted_attempt_stays_visible(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    made = generate(clean_queues, template)
    purge_queues(clean_queues)  # the first delivery is lost with the crashed worker
    claim_and_crash(made["id"])
    report = sweep()
    assert report.recovered >= 1 and report.sent >= 1
    # Exactly one new message for this job (the sweep also sends other tests' jobs that are a minute old)
    bodies = [m["Body"] for m in queued_messages(clean_queues, "JobQueueNormal")]
    assert bodies.count(f'{{"jobId":"{made["id"]}","v":1}}') == 1
    drain_queues(clean_queues)
    done = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body
    assert done["status"] == "completed" and done["attempts"] == 2
    attempts = rows("SELECT n, outcome FROM job_attempts WHERE job_id = %s ORDER BY n", made["id"])
    assert [(a["n"], a["outcome"]) for a in attempts] == [(1, "interrupted"), (2, "succeeded")]


def test_a_lease_that_expires_on_the_last_attempt_fails_the_job(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_MAX_ATTEMPTS="1")
    made = generate(clean_queues, template)
    claim_and_crash(made["id"])
    sweep()
    failed = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body
    assert failed["status"] == "failed" and failed["error"]["code"] == "interrupted"


def test_a_message_lost_with_a_worker_that_received_it_is_sent_again_once_per_period(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    """A worker received the job's message and died before claiming it (or just after a 429 gave the job
    back): SQS hides that copy for the visibility timeout (30 min on AWS). The sweep sends another."""
    made = generate(clean_queues, template)
    sqs = clean_queues.sqs_client()
    assert clean_queues.stack is not None
    url = clean_queues.stack.queue_urls["JobQueueNormal"]
    taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1800).get("Messages", [])
    assert [m["Body"] for m in taken] == [f'{{"jobId":"{made["id"]}","v":1}}']  # held by the dead worker
    rows("UPDATE jobs SET enqueued_at = enqueued_at - interval '50 seconds' WHERE id = %s RETURNING id", made["id"])
    assert sweep(lost_after_seconds=60).resent_lost == 0  # not yet overdue
    rows("UPDATE jobs SET enqueued_at = enqueued_at - interval '20 seconds' WHERE id = %s RETURNING id", made["id"])
    assert sweep(lost_after_seconds=60).resent_lost == 1
    assert sweep(lost_after_seconds=60).resent_lost == 0  # once per period, not once per sweep
    assert drain_queues(clean_queues) == 1
    done = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body
    assert done["status"] == "completed" and done["attempts"] == 1


def test_a_job_waiting_out_a_long_retry_delay_is_not_taken_for_lost(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    # Every call fails with a 503 and the retry waits 10 minutes: its message is delayed, not lost.
    set_env(PROMPTLAB_FAKE_FAIL_STATUS="503", PROMPTLAB_FAKE_FAIL_RATE="1", PROMPTLAB_RETRY_BACKOFF_SECONDS="[600]")
    made = generate(clean_queues, template)
    assert drain_queues(clean_queues, rounds=1) == 1
    waiting = rows("SELECT status, message_due_at > now() + interval '9 minutes' AS later FROM jobs WHERE id = %s",
                   made["id"])  # fmt: skip
    assert waiting == [{"status": "queued", "later": True}]
    rows("UPDATE jobs SET enqueued_at = enqueued_at - interval '1 hour' WHERE id = %s RETURNING id", made["id"])
    assert sweep(lost_after_seconds=60).resent_lost == 0
    rows("UPDATE jobs SET message_due_at = now() - interval '61 seconds' WHERE id = %s RETURNING id", made["id"])
    assert sweep(lost_after_seconds=60).resent_lost == 1


def test_an_overdue_job_ends_failed_expired(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    made = generate(clean_queues, template)
    with connection() as conn:
        conn.execute("UPDATE jobs SET expires_at = now() - interval '1 second' WHERE id = %s", (made["id"],))
    assert sweep().expired >= 1
    expired = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body
    assert expired["status"] == "failed" and expired["error"]["code"] == "expired"
    # Its message is still on the queue; the worker acknowledges it without a call.
    assert drain_queues(clean_queues) == 1
    assert rows("SELECT n FROM job_attempts WHERE job_id = %s", made["id"]) == []


def test_openai_files_past_their_retention_are_deleted_with_their_bytes(clean_queues: LocalRunner) -> None:
    from promptlab.core.errors import NotFound, ValidationFailed
    from promptlab.infra import dataset_uploads
    from promptlab.jobs import openai_files
    from promptlab.tenancy.auth import Principal

    made = openai_files.create_file(principal=Principal(tenant_id="default"), filename="old.jsonl", purpose="batch",
                                    content=b'{"custom_id": "a"}\n')  # fmt: skip
    kept = openai_files.create_file(principal=Principal(tenant_id="default"), filename="new.jsonl", purpose="batch",
                                    content=b'{"custom_id": "b"}\n')  # fmt: skip
    rows("UPDATE openai_files SET expires_at = now() - interval '1 second' WHERE id = %s RETURNING id", made.id)
    sweep()
    with pytest.raises(NotFound):
        openai_files.get_file(tenant_id="default", file_id=made.id)
    with pytest.raises(ValidationFailed):  # its bytes are gone from the bucket too
        list(dataset_uploads.chunks(key=dataset_uploads.file_key("default", made.id), max_bytes=100))
    assert openai_files.file_content(tenant_id="default", file_id=kept.id) == b'{"custom_id": "b"}\n'


def test_a_batch_whose_lines_never_started_within_its_window_ends_expired(clean_queues: LocalRunner) -> None:
    import json

    from promptlab.jobs import openai_batches, openai_files
    from promptlab.models.openai_batches import BatchCreate
    from promptlab.tenancy.auth import Principal

    owner = Principal(tenant_id="default")
    lines = [{"custom_id": f"l{n}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "fake/fake-1", "messages": [{"role": "user", "content": unique("late")}]}}
             for n in range(3)]  # fmt: skip
    made = openai_files.create_file(principal=owner, filename="late.jsonl", purpose="batch",
                                    content="\n".join(json.dumps(x) for x in lines).encode())  # fmt: skip
    batch = openai_batches.create_batch(principal=owner, request=BatchCreate(
        input_file_id=made.id, endpoint="/v1/chat/completions", completion_window="24h"))  # fmt: skip
    # The 24 hours pass with its lines still waiting for a provider batch
    rows("UPDATE jobs SET expires_at = now() - interval '1 second' WHERE openai_batch_id = %s RETURNING id", batch.id)
    sweep()
    ended = openai_batches.get_batch(tenant_id="default", batch_id=batch.id)
    assert ended.status == "expired" and ended.expired_at is not None and ended.output_file_id is None
    assert ended.request_counts.failed == 3 and ended.error_file_id is not None
    errors = openai_files.file_content(tenant_id="default", file_id=ended.error_file_id)
    assert isinstance(errors, bytes)
    assert [json.loads(x)["error"]["code"] for x in errors.splitlines()] == ["batch_expired"] * 3
