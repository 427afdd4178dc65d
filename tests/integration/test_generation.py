"""POST /generate → Postgres row + SQS message → worker → completed job, on real services."""

from decimal import Decimal
from typing import Any

from promptlab.local.runner import LocalRunner
from promptlab.providers.pricing import unit_prices
from tests.support import SetEnv, call_api, drain_queues, generate, queued_messages, rows, unique


def test_job_inserts_may_leave_out_null_columns(runner: LocalRunner) -> None:
    """Inserts name only the non-NULL values of a job; that stores the same row only while no nullable column
    of `jobs` has a default (a migration adding one must also change `jobs_repo.insert_statement`)."""
    found = rows(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs'"
        " AND table_schema = current_schema() AND is_nullable = 'YES' AND column_default IS NOT NULL"
    )
    assert found == []


def test_accepting_writes_one_row_and_one_message(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    job = generate(clean_queues, template, priority="high", metadata={"ticket": "T-1"})
    assert job["status"] == "queued" and job["id"] == job["jobId"] and job["id"].startswith("job_")
    assert job["provider"] == "fake" and job["model"] == "fake-1" and job["metadata"] == {"ticket": "T-1"}
    assert len(rows("SELECT id FROM jobs WHERE template_id = %s", template["id"])) == 1
    high = queued_messages(clean_queues, "JobQueueHigh")
    assert [m["Body"] for m in high] == [f'{{"jobId":"{job["id"]}","v":1}}']
    assert queued_messages(clean_queues, "JobQueueNormal") == []
    assert rows("SELECT enqueued_at FROM jobs WHERE id = %s", job["id"])[0]["enqueued_at"] is not None


def test_the_worker_completes_the_job_with_tokens_and_exact_cost(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    job = generate(clean_queues, template)
    assert drain_queues(clean_queues) == 1
    done = call_api(clean_queues, "GET", f"/jobs/{job['id']}").body
    assert done["status"] == "completed" and done["attempts"] == 1 and done["error"] is None
    assert done["output"].startswith("Fake answer for: Explain SQS")
    assert done["inputTokens"] > 0 and done["outputTokens"] > 0
    assert done["totalTokens"] == done["inputTokens"] + done["outputTokens"]
    prices = unit_prices("fake", "fake-1")
    assert prices is not None
    expected = (done["inputTokens"] * prices.input + done["outputTokens"] * prices.output) / Decimal(1_000_000)
    assert isinstance(done["estimatedCostUSD"], str) and Decimal(done["estimatedCostUSD"]) == expected
    attempts = rows("SELECT outcome, provider_request_id, ended_at FROM job_attempts WHERE job_id = %s", job["id"])
    assert len(attempts) == 1 and attempts[0]["outcome"] == "succeeded" and attempts[0]["provider_request_id"]


def test_a_duplicate_delivery_makes_no_second_call(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    job = generate(clean_queues, template)
    drain_queues(clean_queues)
    before = call_api(clean_queues, "GET", f"/jobs/{job['id']}").body
    assert clean_queues.stack is not None
    clean_queues.sqs_client().send_message(
        QueueUrl=clean_queues.stack.queue_urls["JobQueueNormal"],
        MessageBody=f'{{"jobId":"{job["id"]}","v":1}}',
    )
    assert drain_queues(clean_queues) == 1
    after = call_api(clean_queues, "GET", f"/jobs/{job['id']}").body
    assert after == before
    assert len(rows("SELECT n FROM job_attempts WHERE job_id = %s", job["id"])) == 1


def test_request_parameters_reach_the_job_and_template_defaults_apply(runner: LocalRunner) -> None:
    made = call_api(
        runner,
        "POST",
        "/templates",
        body={"name": unique("defaults"), "body": "{{ a }} {{ b }}", "defaults": {"maxTokens": 7}},
    ).body
    job = call_api(runner, "POST", "/generate", body={"templateId": made["id"], "input": {"a": "x", "b": 2}}).body
    assert job["input"] == {"a": "x", "b": "2"}
    stored = rows("SELECT params FROM jobs WHERE id = %s", job["id"])[0]["params"]
    assert stored == {"maxTokens": 7}
    drain_queues(runner)
    done = call_api(runner, "GET", f"/jobs/{job['id']}").body
    assert done["outputTokens"] <= 7 and done["truncated"] is True and done["finishReason"] == "max_tokens"


def test_bad_generate_requests_name_the_field(runner: LocalRunner, template: dict[str, Any]) -> None:
    cases = [
        ({"templateId": template["id"], "input": {"topc": "x"}}, {"input.topc", "input.topic"}),
        ({"templateId": template["id"], "input": "x", "maxTokens": 0}, {"maxTokens"}),
        ({"templateId": template["id"], "input": "x", "temperature": 3}, {"temperature"}),
        ({"templateId": template["id"], "input": "x", "priority": "urgent"}, {"priority"}),
        ({"templateId": template["id"], "input": "x", "provider": "anthropic"}, {"provider"}),
        ({"templateId": template["id"], "input": 5}, {"input"}),
        ({"input": "x"}, {"templateId"}),
    ]
    for body, expected in cases:
        answer = call_api(runner, "POST", "/generate", body=body)
        assert answer.status == 422, (body, answer.body)
        assert {f["field"] for f in answer.body["error"]["details"]["fields"]} == expected, body


def test_generating_on_a_missing_or_archived_template(runner: LocalRunner, template: dict[str, Any]) -> None:
    missing = call_api(runner, "POST", "/generate", body={"templateId": "tpl_nope", "input": "x"})
    assert missing.status == 404
    call_api(runner, "DELETE", f"/templates/{template['id']}")
    archived = call_api(runner, "POST", "/generate", body={"templateId": template["id"], "input": "x"})
    assert archived.status == 409 and archived.body["error"]["code"] == "conflict"


def test_an_unknown_job_is_a_404(runner: LocalRunner) -> None:
    answer = call_api(runner, "GET", "/jobs/job_nope")
    assert answer.status == 404 and answer.body["error"]["code"] == "not_found"


def test_a_job_accepted_while_sqs_is_down_stays_durable(
    runner: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    from promptlab.infra.job_queue import get_queue

    set_env(JOB_QUEUE_NORMAL_URL="http://127.0.0.1:9/queue/gone")
    get_queue.cache_clear()
    try:
        answer = call_api(runner, "POST", "/generate", body={"templateId": template["id"], "input": "x"})
    finally:
        get_queue.cache_clear()
    assert answer.status == 202 and answer.body["status"] == "queued" and answer.body["enqueuedAt"] is None
    stored = rows("SELECT status, enqueued_at FROM jobs WHERE id = %s", answer.body["id"])
    assert stored == [{"status": "queued", "enqueued_at": None}]
