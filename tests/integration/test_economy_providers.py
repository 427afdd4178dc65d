"""The economy lane through the real batch wire formats: Anthropic Message Batches and OpenAI Batch."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from promptlab.jobs import economy
from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, call_api, drain_queues, queued_messages, unique
from tests.support.provider_server import ProviderServer

INPUTS = ["ok one", "ok two", "batch-error-retryable", "batch-error-permanent", "batch-expire"]


def run_until_settled(job_ids: list[str], runner: LocalRunner, passes: int = 8) -> dict[str, dict[str, Any]]:
    for _ in range(passes):
        economy.run()
    return {job_id: call_api(runner, "GET", f"/jobs/{job_id}").body for job_id in job_ids}


@pytest.mark.parametrize(
    ("provider", "model", "env"),
    [
        ("anthropic", "claude-haiku-4-5", {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": "{url}"}),
        ("openai", "gpt-4.1-mini", {"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": "{url}/v1"}),
    ],
)
def test_a_batch_with_successes_errors_and_expiry(
    clean_queues: LocalRunner,
    server: ProviderServer,
    economy_now: SetEnv,  # noqa: F811 - the fixture
    provider: str,
    model: str,
    env: dict[str, str],
) -> None:
    runner = clean_queues
    economy_now(**{k: v.format(url=server.url) for k, v in env.items()})
    made = call_api(runner, "POST", "/templates", body={"name": unique("eco"), "body": "{{ x }}"}).body
    job_ids = []
    for text in INPUTS:
        body = {"templateId": made["id"], "input": text, "provider": provider, "model": model, "priority": "economy"}
        answer = call_api(runner, "POST", "/generate", body=body)
        assert answer.status == 202, answer.body
        job_ids.append(answer.body["id"])
    economy.run()
    first = call_api(runner, "GET", f"/jobs/{job_ids[0]}").body
    batch = call_api(runner, "GET", f"/batches/{first['batchId']}").body
    assert batch["provider"] == provider and batch["requestCounts"]["total"] == 5
    assert batch["providerBatchId"].startswith("msgbatch_" if provider == "anthropic" else "batch_")
    jobs = run_until_settled(job_ids, runner)
    ok_one, ok_two, retryable, permanent, expiring = (jobs[i] for i in job_ids)
    for done in (ok_one, ok_two):
        assert done["status"] == "completed" and done["lane"] == "economy" and done["output"]
    if provider == "anthropic":  # claude-haiku-4-5 at batch prices: $0.50 / M in, $2.50 / M out (half of $1 / $5)
        assert Decimal(ok_one["estimatedCostUSD"]) == (36 * Decimal("0.50") + 783 * Decimal("2.50")) / 1_000_000
        assert Decimal(ok_one["savedCostUSD"]) == Decimal("0.003951") - Decimal(ok_one["estimatedCostUSD"])
    else:  # gpt-4.1-mini batch: $0.20 / M in, $0.80 / M out; 1,000 cached prompt tokens at the cache price
        expected = (36 * Decimal("0.20") + 1000 * Decimal("0.10") + 783 * Decimal("0.80")) / 1_000_000
        assert Decimal(ok_one["estimatedCostUSD"]) == expected
    # A retryable error goes to the normal lane (a message on the low queue), a permanent one fails,
    # an expired request is retried in the next batch once, then fails.
    assert retryable["lane"] == "standard" and retryable["status"] == "queued"
    assert [m["Body"] for m in queued_messages(runner, "JobQueueLow")] == [f'{{"jobId":"{retryable["id"]}","v":1}}']
    assert permanent["status"] == "failed" and permanent["error"]["retryable"] is False
    assert expiring["status"] == "failed" and expiring["error"]["code"] == "batch_expired"
    ended = call_api(runner, "GET", f"/batches/{first['batchId']}").body
    assert ended["status"] == "ended" and ended["requestCounts"]["succeeded"] == 2
    drain_queues(runner)  # the retryable one completes in the normal lane, at normal prices
    assert call_api(runner, "GET", f"/jobs/{retryable['id']}").body["status"] == "completed"
