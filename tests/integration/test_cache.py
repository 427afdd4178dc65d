"""The result cache, single flight and Idempotency-Key on the real Redis and Postgres."""

import threading
import time
from decimal import Decimal
from typing import Any

from promptlab.infra import result_cache
from promptlab.infra.redis_client import get_redis
from promptlab.local.runner import LocalRunner
from promptlab.models.jobs import CachedResult
from tests.support import SetEnv, call_api, drain_queues, rows, unique


def two_variable_template(runner: LocalRunner, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("cache"), "body": "Compare {{ a }} with {{ b }}.", **fields}
    made: dict[str, Any] = call_api(runner, "POST", "/templates", body=body).body
    return made


def post(runner: LocalRunner, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return call_api(runner, "POST", "/generate", body=body, headers=headers)


def test_a_repeat_with_reordered_keys_is_answered_from_the_cache(clean_queues: LocalRunner) -> None:
    template = two_variable_template(clean_queues)
    first = post(clean_queues, {"templateId": template["id"], "input": {"a": "SQS", "b": "SNS"}})
    assert first.status == 202
    drain_queues(clean_queues)
    original = call_api(clean_queues, "GET", f"/jobs/{first.body['id']}").body
    again = post(clean_queues, {"input": {"b": "SNS", "a": "SQS"}, "templateId": template["id"]})
    assert again.status == 200
    hit = again.body
    assert hit["id"] != original["id"] and hit["status"] == "completed" and hit["cacheHit"] is True
    assert hit["output"] == original["output"] and hit["outputTokens"] == original["outputTokens"]
    assert hit["estimatedCostUSD"] == "0" and Decimal(hit["savedCostUSD"]) == Decimal(original["estimatedCostUSD"])
    # The hit is a job of its own (usage reports count it) and never touched SQS.
    assert rows("SELECT cache_hit, enqueued_at FROM jobs WHERE id = %s", hit["id"]) == [
        {"cache_hit": True, "enqueued_at": None}
    ]
    assert drain_queues(clean_queues) == 0


def test_a_new_version_misses_and_bypasses_skip_the_cache(clean_queues: LocalRunner) -> None:
    template = two_variable_template(clean_queues)
    body = {"templateId": template["id"], "input": {"a": "x", "b": "y"}}
    post(clean_queues, body)
    drain_queues(clean_queues)
    assert post(clean_queues, body).status == 200
    assert post(clean_queues, {**body, "cache": False}).status == 202
    assert post(clean_queues, body, headers={"Cache-Control": "no-cache"}).status == 202
    assert post(clean_queues, {**body, "maxTokens": 50}).status == 202  # other parameters, other key
    call_api(
        clean_queues, "PUT", f"/templates/{template['id']}", body={"name": template["name"], "body": "{{ a }}{{ b }}"}
    )
    assert post(clean_queues, body).status == 202


def test_postgres_answers_when_redis_lost_the_entry_and_refills_it(clean_queues: LocalRunner) -> None:
    template = two_variable_template(clean_queues)
    body = {"templateId": template["id"], "input": {"a": "1", "b": "2"}}
    first = post(clean_queues, body).body
    drain_queues(clean_queues)
    digest = rows("SELECT input_hash FROM jobs WHERE id = %s", first["id"])[0]["input_hash"]
    result_cache.forget(digest)
    assert result_cache.get_result(digest) is None
    hit = post(clean_queues, body)
    assert hit.status == 200 and hit.body["cacheHit"] is True
    assert result_cache.get_result(digest) is not None


def test_entries_expire_with_the_template_ttl(clean_queues: LocalRunner) -> None:
    template = two_variable_template(clean_queues, cacheTtlSeconds=1)
    body = {"templateId": template["id"], "input": {"a": "t", "b": "l"}}
    post(clean_queues, body)
    drain_queues(clean_queues)
    assert post(clean_queues, body).status == 200
    time.sleep(1.2)
    assert post(clean_queues, body).status == 202  # neither Redis nor Postgres answers past the TTL


def test_a_dead_redis_never_fails_a_generation(clean_queues: LocalRunner, set_env: SetEnv) -> None:
    from promptlab.infra.request_limits import get_limiter

    template = two_variable_template(clean_queues)
    set_env(REDIS_URL="redis://127.0.0.1:1/0", PROMPTLAB_RATE_LIMIT_FAIL_OPEN="true")
    get_redis.cache_clear()
    get_limiter.cache_clear()
    try:
        accepted = post(clean_queues, {"templateId": template["id"], "input": {"a": "r", "b": "d"}})
        assert accepted.status == 202
        assert drain_queues(clean_queues) == 1  # the worker completes it, its cache write failing quietly
        done = call_api(clean_queues, "GET", f"/jobs/{accepted.body['id']}").body
        assert done["status"] == "completed"
    finally:
        get_redis.cache_clear()
        get_limiter.cache_clear()


def test_large_results_are_not_cached(set_env: SetEnv) -> None:
    set_env(PROMPTLAB_CACHE_MAX_VALUE_BYTES="1024")
    assert not result_cache.put_result(unique("big"), cached_answer("x" * 2000), ttl_seconds=60)
    assert result_cache.put_result(unique("small"), cached_answer("x" * 100), ttl_seconds=60)


def cached_answer(output: str) -> CachedResult:
    return CachedResult(
        job_id=unique("job"), output=output, finish_reason="end_turn", truncated=False, input_tokens=1,
        output_tokens=1, cache_read_tokens=0, cache_write_tokens=0, total_tokens=2,
        estimated_cost_usd=Decimal("0.000001"), answered_by="fake/fake-1",
    )  # fmt: skip


def test_identical_requests_in_flight_share_one_job(clean_queues: LocalRunner) -> None:
    template = two_variable_template(clean_queues)
    body = {"templateId": template["id"], "input": {"a": "same", "b": "time"}}
    ids: list[str] = []
    lock = threading.Lock()

    def fire() -> None:
        answer = post(clean_queues, body)
        with lock:
            ids.append(answer.body["id"])

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1 and len(ids) == 8
    assert len(rows("SELECT id FROM jobs WHERE template_id = %s", template["id"])) == 1
    assert drain_queues(clean_queues) == 1


def test_idempotency_key_replays_the_first_answer_even_under_concurrency(clean_queues: LocalRunner) -> None:
    template = two_variable_template(clean_queues)
    key = unique("idem")
    body = {"templateId": template["id"], "input": {"a": "i", "b": "k"}, "cache": False}
    answers: list[Any] = []
    lock = threading.Lock()

    def fire() -> None:
        answer = post(clean_queues, body, headers={"Idempotency-Key": key})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status for a in answers} == {202}
    assert len({a.body["id"] for a in answers}) == 1
    assert sum(a.header("Idempotent-Replayed") == "true" for a in answers) == 7
    assert len(rows("SELECT id FROM jobs WHERE template_id = %s", template["id"])) == 1
    other = post(clean_queues, {**body, "input": {"a": "other", "b": "k"}}, headers={"Idempotency-Key": key})
    assert other.status == 409 and other.body["error"]["code"] == "conflict"
    batch = call_api(
        clean_queues, "POST", "/generate/batch", body={"items": [body]}, headers={"Idempotency-Key": unique("b")}
    )
    assert batch.status == 202


def test_the_fast_and_full_generate_paths_answer_alike(clean_queues: LocalRunner) -> None:
    template = two_variable_template(clean_queues)
    fast = post(clean_queues, {"templateId": template["id"], "input": {"a": "f", "b": "p"}})
    full = post(  # an Idempotency-Key takes the full Powertools route
        clean_queues,
        {"templateId": template["id"], "input": {"a": "f", "b": "q"}},
        headers={"Idempotency-Key": unique("k")},
    )
    assert fast.status == full.status == 202
    assert set(fast.body) == set(full.body)
    assert {k.lower() for k in fast.headers} == {k.lower() for k in full.headers}


def test_a_hit_reads_the_cache_in_the_rate_limiters_round_trip(
    clean_queues: LocalRunner, monkeypatch: Any, set_env: SetEnv
) -> None:
    import redis

    set_env(PROMPTLAB_TEMPLATE_CACHE_SECONDS="30")  # the in-process template copy outlives this test's steps
    template = two_variable_template(clean_queues)
    body = {"templateId": template["id"], "input": {"a": unique("x"), "b": "y"}}
    assert post(clean_queues, body).status == 202
    drain_queues(clean_queues)
    trips: list[str] = []
    original_execute = redis.client.Pipeline.execute
    original_command = redis.Redis.execute_command

    def pipeline_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append("pipeline:" + ",".join(str(c[0][0]) for c in self.command_stack))
        return original_execute(self, *args, **kwargs)

    def command(self: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(str(args[0]))
        return original_command(self, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline_execute)
    monkeypatch.setattr(redis.Redis, "execute_command", command)
    hit = post(clean_queues, body)
    assert hit.status == 200 and hit.body["cacheHit"] is True
    assert trips == ["pipeline:EVALSHA,GET"]  # one round trip: limiter and cache lookup together
    trips.clear()
    limited = post(clean_queues, body, headers={"Cache-Control": "no-cache"})
    assert limited.status == 202 and trips[0] == "EVALSHA"  # no cache lookup when the cache is bypassed
