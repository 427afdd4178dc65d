"""Failure modes of the worker: retries, exhausted attempts, permanent errors, poison messages, the DLQ."""

import copy
import json
import time
import uuid
from typing import Any

import pytest

from promptlab.db.connection import connection
from promptlab.local.pollers import SqsPoller
from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, drain_queues, generate, get_job, make_poller, queued_messages, rows


def poller(runner: LocalRunner, queue: str) -> SqsPoller:
    assert runner.stack is not None
    return make_poller(runner, next(m for m in runner.stack.mappings if m.queue_logical_id == queue))


def test_a_retryable_error_requeues_the_job_with_its_error(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_FAKE_FAIL_STATUS="429", PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]")
    made = generate(clean_queues, template)
    assert poller(clean_queues, "JobQueueNormal").poll_once(wait_seconds=0) == 1
    current = get_job(clean_queues, made["id"])
    assert current["status"] == "queued" and current["attempts"] == 1
    assert current["error"]["code"] == "rate_limited" and current["error"]["retryable"] is True
    # The message stayed on the queue (a batch item failure), visible again after the 429's retry-after (1 s).
    assert current["error"]["retryAfterSeconds"] == 1
    assert queued_messages(clean_queues, "JobQueueNormal") == []
    time.sleep(1.1)
    assert len(queued_messages(clean_queues, "JobQueueNormal")) == 1


def test_exhausted_attempts_go_to_the_dlq_and_end_failed(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    set_env(
        PROMPTLAB_FAKE_FAIL_STATUS="529",
        PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]",
        PROMPTLAB_MAX_ATTEMPTS="3",
        PROMPTLAB_THROTTLE="false",
    )  # no provider-wide pause here
    made = generate(clean_queues, template)
    assert drain_queues(clean_queues) == 3
    failed = get_job(clean_queues, made["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 3
    assert failed["error"]["code"] == "overloaded"
    assert "attempts exhausted (3 of 3)" in failed["error"]["message"]
    assert queued_messages(clean_queues, "JobQueueNormal") == []
    dead = queued_messages(clean_queues, "JobDLQ")
    assert len(dead) == 1 and "attempts exhausted" in dead[0]["MessageAttributes"]["reason"]["StringValue"]
    outcomes = rows("SELECT n, outcome FROM job_attempts WHERE job_id = %s ORDER BY n", made["id"])
    assert [r["outcome"] for r in outcomes] == ["error", "error", "error"]
    # The DLQ handler records the dead letter and keeps the worker's reason on the job.
    assert drain_queues(clean_queues, function="DlqFunction") == 1
    letters = rows("SELECT reason, queue FROM dead_letters WHERE job_id = %s", made["id"])
    assert len(letters) == 1 and "attempts exhausted" in letters[0]["reason"]
    assert get_job(clean_queues, made["id"])["error"]["code"] == "overloaded"


def test_a_permanent_error_fails_at_once_without_the_dlq(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_FAKE_FAIL_STATUS="401")
    made = generate(clean_queues, template)
    assert drain_queues(clean_queues) == 1
    failed = get_job(clean_queues, made["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["error"] == {
        "code": "authentication_failed",
        "message": "fake provider told to fail with 401",
        "retryable": False,
        "providerStatus": 401,
        "retryAfterSeconds": None,
        "rateLimit": None,
    }
    assert queued_messages(clean_queues, "JobDLQ") == []


def test_a_poison_message_is_redriven_to_the_dlq_and_recorded(clean_queues: LocalRunner) -> None:
    assert clean_queues.stack is not None
    sqs = clean_queues.sqs_client()
    url = clean_queues.stack.queue_urls["JobQueueLow"]
    sqs.send_message(QueueUrl=url, MessageBody="this is not a job")
    low = poller(clean_queues, "JobQueueLow")
    seen: list[dict[str, Any]] = []

    def invoke_and_keep(function: str, event: dict[str, Any]) -> Any:
        seen.extend(event["Records"])
        return clean_queues.invoke(function, event)

    low.invoke = invoke_and_keep
    for _ in range(4):  # maxReceiveCount is 4 in the tests
        assert low.poll_once(wait_seconds=0) == 1
        # Skip the 30-minute visibility timeout instead of waiting for it.
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=seen[-1]["receiptHandle"], VisibilityTimeout=0)
    assert low.poll_once(wait_seconds=0) == 0
    dead = queued_messages(clean_queues, "JobDLQ")
    assert [m["Body"] for m in dead] == ["this is not a job"]
    assert drain_queues(clean_queues, function="DlqFunction") == 1
    letters = rows("SELECT job_id, reason, receive_count FROM dead_letters WHERE body = %s", "this is not a job")
    assert letters[-1]["job_id"] is None
    assert letters[-1]["reason"].startswith("no job id in the message (not a PromptLab job, or purged): dead-lettered")


def test_dead_letters_without_a_job_say_so_and_can_be_dismissed(
    clean_queues: LocalRunner, template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from promptlab.cli.main import main

    assert clean_queues.stack is not None
    ghost, real = f"job_{uuid.uuid4().hex}", generate(clean_queues, template)["id"]
    for job_id in (ghost, real):
        clean_queues.sqs_client().send_message(
            QueueUrl=clean_queues.stack.queue_urls["JobDLQ"], MessageBody=json.dumps({"jobId": job_id, "v": 1})
        )
    assert drain_queues(clean_queues, function="DlqFunction") == 2
    assert main(["dlq", "list", "--limit", "1000"]) == 0
    listed = capsys.readouterr().out
    assert f"(no job)  [open]  no job {ghost} (not a PromptLab job, or purged)" in listed and real in listed
    assert main(["dlq", "dismiss", "--all-without-job"]) == 0
    assert "dismissed: " in capsys.readouterr().out
    assert main(["dlq", "list", "--limit", "1000"]) == 0
    after = capsys.readouterr().out
    assert ghost not in after and real in after  # a letter with a job stays until redriven or dismissed by id
    (letter,) = rows("SELECT id FROM dead_letters WHERE job_id = %s", real)
    assert main(["dlq", "dismiss", f"#{letter['id']}"]) == 0
    capsys.readouterr()
    assert lifecycle_redrive(real).redriven == []  # a dismissed letter is never redriven
    assert main(["dlq", "list", "--all", "--limit", "1000"]) == 0
    assert "[dismissed " in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main(["dlq", "dismiss"])
    assert usage.value.code == 2


def lifecycle_redrive(job_id: str) -> Any:
    from promptlab.jobs.dead_letters import redrive

    return redrive(tenant_id=None, job_id=job_id)


def test_the_dlq_handler_fails_a_job_that_crash_looped(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    made = generate(clean_queues, template)
    assert clean_queues.stack is not None
    clean_queues.sqs_client().send_message(
        QueueUrl=clean_queues.stack.queue_urls["JobDLQ"],
        MessageBody=json.dumps({"jobId": made["id"], "v": 1}),
    )
    assert drain_queues(clean_queues, function="DlqFunction") == 1
    failed = get_job(clean_queues, made["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "dead_lettered"
    assert failed["error"]["message"].startswith("dead-lettered after 1 receives")
    # A second delivery of the same dead letter changes nothing.
    with connection() as conn:
        count = conn.execute("SELECT count(*) AS n FROM dead_letters WHERE job_id = %s", (made["id"],)).fetchone()
    assert count is not None and count["n"] == 1


def test_the_committed_sample_events_run_through_their_handlers(runner: LocalRunner) -> None:
    from tests.support import sample_event

    health = runner.invoke("ApiFunction", sample_event("api-health.json"))
    assert health["statusCode"] == 200
    # The samples carry no API key: with auth on (the default) they are refused, saying how to send one.
    refused = runner.invoke("ApiFunction", sample_event("api-get-job.json"))
    assert refused["statusCode"] == 401 and json.loads(refused["body"])["error"]["code"] == "unauthorized"

    def with_key(name: str) -> dict[str, Any]:
        event = copy.deepcopy(sample_event(name))
        event["headers"]["Authorization"] = f"Bearer {runner.dev_key}"
        return event

    missing = runner.invoke("ApiFunction", with_key("api-get-job.json"))
    assert missing["statusCode"] == 404 and json.loads(missing["body"])["error"]["code"] == "not_found"
    generated = runner.invoke("ApiFunction", with_key("api-generate.json"))
    assert generated["statusCode"] == 404  # the sample names a template that does not exist here
    assert runner.invoke("WorkerFunction", sample_event("worker-job-message.json")) == {"batchItemFailures": []}
    assert runner.invoke("DlqFunction", sample_event("dlq-dead-letter.json")) == {"batchItemFailures": []}
    # The sample's template does not exist here: the submission is parked on the intake DLQ, not retried.
    assert runner.invoke("IntakeFunction", sample_event("intake-submission.json")) == {"batchItemFailures": []}
    assert runner.invoke("NotifierFunction", sample_event("notifier-announcement.json")) == {"batchItemFailures": []}
    assert runner.invoke("EconomyFunction", sample_event("economy-schedule.json")).keys() == {"submitted", "settled"}
    page = runner.invoke("ConsoleFunction", sample_event("console-page.json"))
    assert page["statusCode"] == 200 and "<title>PromptLab console</title>" in page["body"]
    assert runner.invoke("SweeperFunction", sample_event("sweeper-schedule.json")).keys() == {
        "purged",
        "sent",
        "recovered",
        "expired",
        "resent_lost",
    }


def test_a_retry_then_success_bills_once(clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv) -> None:
    from promptlab.providers import fake
    from promptlab.providers.base import error_for_status

    set_env(PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]")
    made = generate(clean_queues, template)
    original = fake.FakeProvider.generate
    calls: list[str] = []

    def fail_once(self: fake.FakeProvider, call: Any) -> Any:
        calls.append(call.model)
        if len(calls) == 1:
            raise error_for_status(503, "overloaded for a moment", retry_after=0)
        return original(self, call)

    fake.FakeProvider.generate = fail_once  # type: ignore[method-assign]
    try:
        assert drain_queues(clean_queues) == 2
    finally:
        fake.FakeProvider.generate = original  # type: ignore[method-assign]
    done = get_job(clean_queues, made["id"])
    assert done["status"] == "completed" and done["attempts"] == 2 and done["error"] is None
    assert [a["outcome"] for a in done["attemptHistory"]] == ["error", "succeeded"]
    assert len(calls) == 2 and done["estimatedCostUSD"] is not None


def test_a_429_gives_the_attempt_back_and_does_not_escalate_the_backoff(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptlab.infra.job_queue import get_queue
    from promptlab.providers import fake
    from promptlab.providers.base import error_for_status

    # Given the retry backoff, and a provider answering 429, 429, 503, 503, then the answer
    set_env(PROMPTLAB_RETRY_BACKOFF_SECONDS="[1, 3, 10]")
    made = generate(clean_queues, template)
    script = [(429, 0.0), (429, 0.0), (503, None), (503, None)]
    original = fake.FakeProvider.generate

    def scripted(self: fake.FakeProvider, call: Any) -> Any:
        if script:
            status, retry_after = script.pop(0)
            raise error_for_status(status, "scripted", retry_after=retry_after)
        return original(self, call)

    delays: list[tuple[str, int]] = []
    queue = get_queue()
    real_delay, real_park = queue.delay, queue.park

    def delayed(*, source_arn: str, receipt_handle: str, seconds: int) -> None:
        delays.append(("retry", seconds))
        real_delay(source_arn=source_arn, receipt_handle=receipt_handle, seconds=seconds)

    def parked(*, source_arn: str, body: str, seconds: int) -> None:
        delays.append(("parked", seconds))
        real_park(source_arn=source_arn, body=body, seconds=seconds)

    monkeypatch.setattr(queue, "delay", delayed)
    monkeypatch.setattr(queue, "park", parked)
    monkeypatch.setattr(fake.FakeProvider, "generate", scripted)
    deadline = time.monotonic() + 30
    while get_job(clean_queues, made["id"])["status"] != "completed":
        assert time.monotonic() < deadline, (delays, script, get_job(clean_queues, made["id"])["attemptHistory"])
        drain_queues(clean_queues)
        time.sleep(0.2)
    # Then the two 429s cost no attempt (3 were allowed: 5 calls, 5 attempts, 2 given back) and no receive
    # (their retry-after of 0 was sat out in the invocation: the call was made again at once, on the same
    # copy), and the 503s waited the schedule's first and second steps, not its third: the 429s did not
    # escalate it
    done = get_job(clean_queues, made["id"])
    assert (done["attempts"], done["maxAttempts"]) == (5, 5)
    outcomes = [a["outcome"] for a in done["attemptHistory"]]
    assert outcomes == ["throttled", "throttled", "error", "error", "succeeded"]
    assert delays == [("retry", 1), ("retry", 3)]


def test_a_delivery_of_a_job_leased_by_another_worker_is_acknowledged_without_a_call(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    from promptlab.db import jobs_repo

    made = generate(clean_queues, template)
    with connection() as conn:
        assert jobs_repo.claim_job(conn, job_id=made["id"], lease_seconds=90, token="another-worker") is not None
    assert drain_queues(clean_queues) == 1  # acknowledged, not retried
    current = get_job(clean_queues, made["id"])
    assert current["status"] == "processing" and current["attempts"] == 1
    assert current["attemptHistory"] == []  # the other worker never got to write its attempt; no call was made here
    assert queued_messages(clean_queues, "JobQueueNormal") == []
