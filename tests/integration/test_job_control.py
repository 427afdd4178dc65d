"""Listing, cancelling, retrying, batches, redrive and priorities, through the API handler."""

from typing import Any

from promptlab.db.connection import connection
from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, call_api, drain_queues, generate, queued_messages, rows, unique


def test_get_job_shows_the_attempt_history(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_FAKE_FAIL_STATUS="503", PROMPTLAB_FAKE_FAIL_RATE="1", PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]")
    made = generate(clean_queues, template)
    drain_queues(clean_queues)
    history = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body["attemptHistory"]
    assert [(a["n"], a["outcome"], a["error"]["code"]) for a in history] == [
        (1, "error", "provider_unavailable"),
        (2, "error", "provider_unavailable"),
        (3, "error", "provider_unavailable"),
    ]
    assert all(a["startedAt"].endswith("Z") and a["endedAt"] for a in history)


def test_list_filters_and_pages_and_omits_output(runner: LocalRunner, template: dict[str, Any]) -> None:
    ids = [generate(runner, template, priority=p)["id"] for p in ("low", "low", "high")]
    drain_queues(runner)
    page = call_api(runner, "GET", "/jobs", query={"templateId": template["id"], "limit": "2"}).body
    assert [j["id"] for j in page["items"]] == ids[::-1][:2] and "output" not in page["items"][0]
    rest = call_api(runner, "GET", "/jobs", query={"templateId": template["id"], "cursor": page["nextCursor"]}).body
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["nextCursor"] is None
    low = call_api(runner, "GET", "/jobs", query={"templateId": template["id"], "priority": "low"}).body
    assert sorted(j["id"] for j in low["items"]) == sorted(ids[:2])
    done = call_api(runner, "GET", "/jobs", query={"templateId": template["id"], "status": "completed"}).body
    assert len(done["items"]) == 3
    future = call_api(
        runner, "GET", "/jobs", query={"templateId": template["id"], "createdFrom": "2999-01-01T00:00:00Z"}
    ).body
    assert future["items"] == []
    bad = call_api(runner, "GET", "/jobs", query={"status": "sleeping"})
    assert bad.status == 422 and bad.body["error"]["details"]["fields"][0]["field"] == "status"


def test_cancel_a_queued_job_and_the_worker_skips_it(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    made = generate(clean_queues, template)
    cancelled = call_api(clean_queues, "POST", f"/jobs/{made['id']}/cancel")
    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled"
    assert drain_queues(clean_queues) == 1
    assert rows("SELECT n FROM job_attempts WHERE job_id = %s", made["id"]) == []
    again = call_api(clean_queues, "POST", f"/jobs/{made['id']}/cancel")
    assert again.status == 409 and again.body["error"]["details"]["status"] == "cancelled"


def test_cancel_during_the_call_keeps_the_cost_once_and_drops_the_output(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    from promptlab.providers import fake

    made = generate(clean_queues, template)
    original = fake.FakeProvider.generate

    def cancel_then_answer(self: fake.FakeProvider, call: Any) -> Any:
        assert call_api(clean_queues, "POST", f"/jobs/{made['id']}/cancel").status == 200
        return original(self, call)

    fake.FakeProvider.generate = cancel_then_answer  # type: ignore[method-assign]
    try:
        drain_queues(clean_queues)
    finally:
        fake.FakeProvider.generate = original  # type: ignore[method-assign]
    job = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body
    assert job["status"] == "cancelled" and job["output"] is None
    assert job["outputTokens"] > 0 and job["estimatedCostUSD"] is not None
    assert job["attemptHistory"][0]["outcome"] == "discarded"


def test_retry_a_failed_job_with_a_fresh_budget(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_FAKE_FAIL_STATUS="400")
    made = generate(clean_queues, template)
    drain_queues(clean_queues)
    assert call_api(clean_queues, "GET", f"/jobs/{made['id']}").body["status"] == "failed"
    set_env(PROMPTLAB_FAKE_FAIL_STATUS="")
    retried = call_api(clean_queues, "POST", f"/jobs/{made['id']}/retry")
    assert retried.status == 200 and retried.body["status"] == "queued" and retried.body["maxAttempts"] == 4
    drain_queues(clean_queues)
    done = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body
    assert done["status"] == "completed" and done["attempts"] == 2
    assert call_api(clean_queues, "POST", f"/jobs/{made['id']}/retry").status == 409


def test_batch_answers_per_item_and_sends_in_batches(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    items: list[dict[str, Any]] = [{"templateId": template["id"], "input": f"topic {i}"} for i in range(23)]
    items[5] = {"templateId": template["id"], "input": {"nope": 1}}
    items[9] = {"templateId": "tpl_missing", "input": "x"}
    items[12] = {"templateId": template["id"], "input": "x", "maxTokens": 0}
    answer = call_api(clean_queues, "POST", "/generate/batch", body={"items": items})
    assert answer.status == 202
    results = answer.body["items"]
    assert len(results) == 23
    assert results[5]["error"]["code"] == "validation_error" and "jobId" not in results[5]
    assert results[9]["error"]["code"] == "not_found"
    assert results[12]["error"]["details"]["fields"][0]["field"] == "maxTokens"
    accepted = [r["jobId"] for r in results if "jobId" in r]
    assert len(accepted) == 20 and all(r["status"] == "queued" for r in results if "jobId" in r)
    assert len(queued_messages(clean_queues, "JobQueueNormal")) == 20
    assert drain_queues(clean_queues) == 20
    too_many = call_api(clean_queues, "POST", "/generate/batch", body={"items": items * 5})
    assert too_many.status == 422 and too_many.body["error"]["details"]["fields"][0]["field"] == "items"


def test_redrive_sends_dead_lettered_jobs_again_once(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    set_env(
        PROMPTLAB_FAKE_FAIL_STATUS="529", PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]", PROMPTLAB_THROTTLE="false"
    )  # no provider-wide pause here
    made = generate(clean_queues, template)
    drain_queues(clean_queues)
    drain_queues(clean_queues, function="DlqFunction")
    set_env(PROMPTLAB_FAKE_FAIL_STATUS="")
    first = call_api(clean_queues, "POST", "/dlq/redrive", body={"jobId": made["id"]})
    assert first.status == 200 and first.body["redriven"] == [made["id"]]
    assert call_api(clean_queues, "POST", "/dlq/redrive", body={"jobId": made["id"]}).body["redriven"] == []
    drain_queues(clean_queues)
    done = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body
    assert done["status"] == "completed" and done["attempts"] == 4
    with connection() as conn:
        letter = conn.execute("SELECT redriven_at FROM dead_letters WHERE job_id = %s", (made["id"],)).fetchone()
    assert letter is not None and letter["redriven_at"] is not None


def test_priorities_use_their_own_queues(clean_queues: LocalRunner, runner: LocalRunner) -> None:
    made = call_api(runner, "POST", "/templates", body={"name": unique("prio"), "body": "{{ x }}"}).body
    for priority in ("high", "normal", "low"):
        generate(clean_queues, made, input={"x": priority}, priority=priority)
    for logical_id, priority in (("JobQueueHigh", "high"), ("JobQueueNormal", "normal"), ("JobQueueLow", "low")):
        bodies = [m["Body"] for m in queued_messages(clean_queues, logical_id)]
        assert len(bodies) == 1, (priority, bodies)
    assert clean_queues.stack is not None
    concurrency = {m.queue_logical_id: m.maximum_concurrency for m in clean_queues.stack.mappings}
    assert concurrency["JobQueueHigh"] > concurrency["JobQueueNormal"] > concurrency["JobQueueLow"]


def test_a_long_poll_answers_as_soon_as_the_job_ends(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    import threading
    import time
    from datetime import UTC, datetime

    job = call_api(clean_queues, "POST", "/generate", body={"templateId": template["id"], "input": unique("wait")}).body
    still = call_api(clean_queues, "GET", f"/jobs/{job['id']}", query={"wait": "0.3"})
    assert still.status == 200 and still.body["status"] == "queued"  # the wait ran out: the job as it is
    worker = threading.Timer(0.5, drain_queues, args=(clean_queues,))
    worker.start()
    started = time.monotonic()
    answer = call_api(clean_queues, "GET", f"/jobs/{job['id']}", query={"wait": "15"})
    returned = datetime.now(UTC)
    worker.join()
    assert answer.body["status"] == "completed" and time.monotonic() - started < 15
    # It left right after the job ended, not at the end of the wait (50 ms polls; the bound is loose for CI).
    completed = datetime.fromisoformat(answer.body["completedAt"].replace("Z", "+00:00"))
    assert (returned - completed).total_seconds() < 1
    too_long = call_api(clean_queues, "GET", f"/jobs/{job['id']}", query={"wait": "21"})
    assert too_long.status == 422 and too_long.body["error"]["details"]["fields"][0]["field"] == "wait"


def test_delete_purges_input_and_output_and_keeps_the_accounting(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    from promptlab.core.settings import get_settings
    from promptlab.infra import result_cache
    from promptlab.infra.redis_client import get_redis

    body = {"templateId": template["id"], "input": unique("secret text"), "metadata": {"who": "alice"}}
    job = call_api(clean_queues, "POST", "/generate", body=body).body
    assert call_api(clean_queues, "DELETE", f"/jobs/{job['id']}").status == 409  # still queued: cancel first
    drain_queues(clean_queues)
    done = call_api(clean_queues, "GET", f"/jobs/{job['id']}").body
    digest = rows("SELECT input_hash FROM jobs WHERE id = %s", job["id"])[0]["input_hash"]
    key = f"{get_settings().redis_prefix}cache:{digest}"
    assert get_redis().exists(key) == 1
    assert call_api(clean_queues, "DELETE", f"/jobs/{job['id']}").status == 204
    purged = call_api(clean_queues, "GET", f"/jobs/{job['id']}").body
    assert purged["input"] is None and purged["output"] is None and purged["metadata"] is None
    assert purged["purgedAt"] is not None and purged["status"] == "completed"
    assert purged["estimatedCostUSD"] == done["estimatedCostUSD"] and purged["totalTokens"] == done["totalTokens"]
    stored = rows("SELECT input, output, metadata FROM jobs WHERE id = %s", job["id"])[0]
    assert stored == {"input": None, "output": None, "metadata": None}
    assert get_redis().exists(key) == 0 and result_cache.get_result(key.split("cache:")[1]) is None
    # The same request is a provider call again, not an answer from the purged one.
    again = call_api(clean_queues, "POST", "/generate", body=body)
    assert again.status == 202 and again.body["cacheHit"] is False
    assert call_api(clean_queues, "DELETE", "/jobs/job_nope").status == 404


def test_the_sweeper_purges_past_a_tenants_retention(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    from promptlab.jobs.sweeper import sweep

    job = call_api(clean_queues, "POST", "/generate", body={"templateId": template["id"], "input": unique("r")}).body
    drain_queues(clean_queues)
    rows("UPDATE tenants SET retention_days = 7 WHERE id = 'default' RETURNING id")
    try:
        sweep()
        assert rows("SELECT purged_at FROM jobs WHERE id = %s", job["id"])[0]["purged_at"] is None  # too recent
        rows("UPDATE jobs SET completed_at = now() - interval '8 days' WHERE id = %s RETURNING id", job["id"])
        assert sweep().purged >= 1
        stored = rows("SELECT input, output, purged_at, estimated_cost_usd FROM jobs WHERE id = %s", job["id"])[0]
        assert stored["input"] is None and stored["output"] is None and stored["purged_at"] is not None
        assert stored["estimated_cost_usd"] is not None
    finally:
        rows("UPDATE tenants SET retention_days = NULL WHERE id = 'default' RETURNING id")


def test_expires_at_sets_the_deadline_of_one_job(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    from promptlab.jobs.sweeper import sweep

    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    job = call_api(
        clean_queues, "POST", "/generate", body={"templateId": template["id"], "input": unique("e"), "expiresAt": soon}
    ).body
    assert job["expiresAt"].startswith(soon[:19])
    rows("UPDATE jobs SET expires_at = now() - interval '1 second' WHERE id = %s RETURNING id", job["id"])
    sweep()
    ended = call_api(clean_queues, "GET", f"/jobs/{job['id']}").body
    assert ended["status"] == "failed" and ended["error"]["code"] == "expired"
    past = call_api(
        clean_queues,
        "POST",
        "/generate",
        body={"templateId": template["id"], "input": "x", "expiresAt": "2020-01-01T00:00:00Z"},
    )
    assert past.status == 422 and past.body["error"]["details"]["fields"][0]["field"] == "expiresAt"


def test_a_waiter_is_woken_by_the_end_of_its_job_not_by_its_timeout(runner: LocalRunner) -> None:
    import threading
    import time

    from promptlab.infra import job_ends

    # Given a waiter listening for a job's end with a 10 s wait
    job_id = unique("job")
    with job_ends.listening(job_id, fallback_poll_seconds=10) as wait:
        # When the worker publishes the end 0.2 s later
        threading.Timer(0.2, job_ends.publish_end, args=(job_id,)).start()
        started = time.monotonic()
        wait(10)
        waited = time.monotonic() - started
    # Then the wait returns with the message, long before its timeout
    assert waited < 5


def test_a_key_holds_at_most_its_share_of_long_polls(clean_queues: LocalRunner, set_env: SetEnv) -> None:
    import threading
    import time

    from promptlab.tenancy import auth

    # Given a key allowed 2 long polls at once, and a job that stays queued
    set_env(PROMPTLAB_MAX_WAITS_PER_KEY="2")
    made = auth.create_key(name=unique("waits"))
    template = call_api(
        clean_queues, "POST", "/templates", api_key=made.key, body={"name": unique("w"), "body": "{{ t }}"}
    ).body
    job = call_api(
        clean_queues, "POST", "/generate", api_key=made.key, body={"templateId": template["id"], "input": "x"}
    )
    statuses: list[int] = []

    def long_poll() -> None:
        answer = call_api(clean_queues, "GET", f"/jobs/{job.body['id']}", api_key=made.key, query={"wait": "1.5"})
        statuses.append(answer.status)

    # When it opens 2 long polls and then a third
    waiting = [threading.Thread(target=long_poll) for _ in range(2)]
    for thread in waiting:
        thread.start()
    time.sleep(0.5)
    third = call_api(clean_queues, "GET", f"/jobs/{job.body['id']}", api_key=made.key, query={"wait": "1"})
    # Then the third is a 429 at once, and a plain read still answers
    assert third.status == 429 and third.body["error"]["code"] == "rate_limited" and third.header("Retry-After")
    assert call_api(clean_queues, "GET", f"/jobs/{job.body['id']}", api_key=made.key).status == 200
    for thread in waiting:
        thread.join()
    assert statuses == [200, 200]
    # And once they ended, long polls are allowed again (another key's never counted)
    again = call_api(clean_queues, "GET", f"/jobs/{job.body['id']}", api_key=made.key, query={"wait": "0.2"})
    assert again.status == 200
