"""The economy lane: jobs through provider batch APIs at batch prices, settled exactly once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from promptlab.jobs import economy
from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, call_api, drain_queues, get_job, queued_messages, rows, unique


def submit(runner: LocalRunner, template: dict[str, Any], count: int, **fields: Any) -> list[dict[str, Any]]:
    jobs = []
    for _ in range(count):
        body = {"templateId": template["id"], "input": unique("eco"), "priority": "economy", "maxTokens": 200, **fields}
        answer = call_api(runner, "POST", "/generate", body=body)
        assert answer.status == 202, answer.body
        jobs.append(answer.body)
    return jobs


def test_economy_jobs_complete_through_a_batch_at_batch_prices(
    clean_queues: LocalRunner, template: dict[str, Any], economy_now: SetEnv
) -> None:
    runner = clean_queues
    made = submit(runner, template, 3)
    assert all(j["lane"] == "economy" and j["status"] == "queued" for j in made)
    assert queued_messages(runner, "JobQueueLow") == [] and queued_messages(runner, "JobQueueNormal") == []
    report = economy.run()
    assert report.submitted == 1
    sent = get_job(runner, made[0]["id"])
    assert sent["status"] == "processing" and sent["batchId"].startswith("bat_")
    batch = call_api(runner, "GET", f"/batches/{sent['batchId']}").body
    assert batch["status"] == "in_progress" and batch["requestCounts"]["total"] == 3 and batch["provider"] == "fake"
    assert economy.run().settled == 3
    for item in made:
        done = get_job(runner, item["id"])
        assert done["status"] == "completed" and done["attempts"] == 1
        # fake-1 at batch prices: $0.50 / M input, $2.50 / M output — half the standard $1 / $5.
        expected = (done["inputTokens"] * Decimal("0.50") + done["outputTokens"] * Decimal("2.50")) / 1_000_000
        assert Decimal(done["estimatedCostUSD"]) == expected and Decimal(done["savedCostUSD"]) == expected
    ended = call_api(runner, "GET", f"/batches/{sent['batchId']}").body
    assert ended["status"] == "ended" and ended["requestCounts"]["succeeded"] == 3
    assert economy.run().settled == 0  # settled once: a second pass changes nothing
    listed = call_api(runner, "GET", "/batches").body["items"]
    assert sent["batchId"] in [b["id"] for b in listed]
    usage = call_api(runner, "GET", "/usage", query={"groupBy": "template"}).body
    mine = next(i for i in usage["items"] if i["key"] == template["id"])
    assert Decimal(mine["batchSavedUSD"]) == sum(Decimal(get_job(runner, j["id"])["savedCostUSD"]) for j in made)


def test_errors_and_expiry_go_where_they_belong(
    clean_queues: LocalRunner, template: dict[str, Any], economy_now: SetEnv
) -> None:
    runner = clean_queues
    economy_now(PROMPTLAB_FAKE_BATCH_ERROR_RATE="1")  # every request errors: alternately retryable, permanent
    made = submit(runner, template, 4)
    economy.run()
    economy.run()
    states = sorted((get_job(runner, j["id"])["lane"], get_job(runner, j["id"])["status"]) for j in made)
    # Retryable errors moved to the normal lane (their messages are on the low queue); permanent ones failed.
    assert ("standard", "queued") in states and ("economy", "failed") in states, states
    moved = [j["id"] for j in made if get_job(runner, j["id"])["lane"] == "standard"]
    assert sorted(m["Body"] for m in queued_messages(runner, "JobQueueLow")) == sorted(
        f'{{"jobId":"{i}","v":1}}' for i in moved
    )
    economy_now(PROMPTLAB_FAKE_BATCH_ERROR_RATE="0")
    drain_queues(runner)
    assert all(get_job(runner, i)["status"] == "completed" for i in moved)

    economy_now(PROMPTLAB_FAKE_BATCH_EXPIRE="true")
    expiring = submit(runner, template, 1)[0]
    economy.run()
    first = get_job(runner, expiring["id"])["batchId"]
    economy.run()  # expired: back to waiting, and (being due) sent again in the same pass
    again = get_job(runner, expiring["id"])
    assert again["status"] == "processing" and again["batchId"] not in {None, first}
    assert again["error"]["code"] == "batch_expired"
    economy.run()  # expired again: failed with the reason
    ended = get_job(runner, expiring["id"])
    assert ended["status"] == "failed" and ended["error"]["code"] == "batch_expired"
    assert "twice" in ended["error"]["message"]


def test_a_poller_crash_between_results_completes_no_job_twice_and_loses_none(
    clean_queues: LocalRunner, template: dict[str, Any], economy_now: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = clean_queues
    made = submit(runner, template, 5)
    economy.run()
    real_settle = economy.settle
    calls = {"n": 0}

    def crash_after_two(batch: Any, item: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("poller killed")
        return real_settle(batch, item)

    monkeypatch.setattr(economy, "settle", crash_after_two)
    with pytest.raises(RuntimeError):
        economy.poll()
    monkeypatch.setattr(economy, "settle", real_settle)
    assert sum(get_job(runner, j["id"])["status"] == "completed" for j in made) == 2
    economy.poll()  # the next pass (or another poller) settles the rest
    assert all(get_job(runner, j["id"])["status"] == "completed" for j in made)
    ids = [j["id"] for j in made]
    assert rows("SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND attempts = 1", ids)[0]["n"] == 5
    outputs = rows("SELECT count(DISTINCT completed_at) AS n FROM jobs WHERE id = ANY(%s)", ids)[0]["n"]
    assert outputs == 5  # each written once: a second write would have needed `processing` again


def test_cancelling_a_job_in_an_open_batch_discards_its_answer_and_keeps_its_cost(
    clean_queues: LocalRunner, template: dict[str, Any], economy_now: SetEnv
) -> None:
    runner = clean_queues
    made = submit(runner, template, 2)
    economy.run()
    cancelled = call_api(runner, "POST", f"/jobs/{made[0]['id']}/cancel")
    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled"
    economy.run()
    gone = get_job(runner, made[0]["id"])
    assert gone["status"] == "cancelled" and gone["output"] is None and Decimal(gone["estimatedCostUSD"]) > 0
    assert get_job(runner, made[1]["id"])["status"] == "completed"


def test_a_provider_without_a_batch_api_is_refused_at_submit(runner: LocalRunner, template: dict[str, Any]) -> None:
    body = {"templateId": template["id"], "input": "x", "priority": "economy", "provider": "openai-compatible"}
    answer = call_api(runner, "POST", "/generate", body=body)
    assert answer.status == 422


def test_an_economy_experiment_runs_through_a_provider_batch_at_batch_prices(
    clean_queues: LocalRunner, economy_now: SetEnv
) -> None:
    runner = clean_queues
    # Given an experiment in the economy lane over 4 rows, scored by `contains`
    made = call_api(runner, "POST", "/templates", body={"name": unique("econ-exp"), "body": "Label: {{ t }}"}).body
    rows_ = [{"input": {"t": f"item{i}"}, "expected": f"item{i}"} for i in range(4)]
    dataset = call_api(runner, "POST", "/datasets", body={"name": unique("econ"), "rows": rows_}).body
    body = {"datasetId": dataset["id"], "variants": [{"template": made["id"]}], "scorers": [{"type": "contains"}],
            "priority": "economy"}  # fmt: skip
    started = call_api(runner, "POST", "/experiments", body=body)
    assert started.status == 201, started.body
    assert queued_messages(runner, "JobQueueNormal") == []  # economy jobs wait for a provider batch
    # When the economy lane submits and settles the batch
    assert economy.run().submitted == 1
    economy.run()
    # Then the experiment ends, scored, at batch prices
    found = call_api(runner, "GET", f"/experiments/{started.body['id']}").body
    assert found["status"] == "completed", found
    variant = found["variants"][0]
    assert variant["completed"] == 4 and variant["scores"] == {"contains": 1.0}
    jobs = rows("SELECT input_tokens, output_tokens, estimated_cost_usd FROM jobs WHERE experiment_id = %s",
                started.body["id"])  # fmt: skip
    batch_price = sum((j["input_tokens"] * Decimal("0.50") + j["output_tokens"] * Decimal("2.50")) for j in jobs)
    assert Decimal(variant["costUSD"]) == batch_price / 1_000_000
