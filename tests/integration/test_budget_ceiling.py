"""A budget is a ceiling whatever path a job takes: spent + reserved <= limit at every moment.

The property test drives random sequences of submits (plain, JSON mode that never satisfies its schema,
with fallbacks, batches, economy), worker passes under provider faults, retries, redrives, cancels and
economy passes against small budgets, and checks the invariant and the ledger after every step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlab.core.settings import get_settings
from promptlab.jobs import economy, sweeper
from promptlab.local.runner import LocalRunner
from promptlab.tenancy import auth
from tests.support import call_api, drain_queues, make_poller, rows, unique

# A string schema the fake provider's answer ("xxxxx") can never satisfy: every answer is billed and asked again.
UNSATISFIABLE = {"type": "json_schema", "schema": {"type": "string", "minLength": 5, "maxLength": 2}}
FAULTS = ["", "429", "500", "529", "400"]


def ledger(key_id: str) -> dict[str, Decimal]:
    """The key's budget row beside the sums over its jobs."""
    budget = rows("SELECT spent_usd, reserved_usd FROM key_budgets WHERE key_id = %s", key_id)
    jobs = rows(
        "SELECT coalesce(sum(estimated_cost_usd), 0) AS cost, coalesce(sum(reserved_cost_usd), 0) AS held"
        " FROM jobs WHERE api_key_id = %s",
        key_id,
    )[0]
    spent = budget[0]["spent_usd"] if budget else Decimal(0)
    reserved = budget[0]["reserved_usd"] if budget else Decimal(0)
    return {"spent": spent, "reserved": reserved, "cost": jobs["cost"], "held": jobs["held"]}


def assert_ceiling(key_id: str, limit: Decimal, step: str) -> None:
    now = ledger(key_id)
    assert now["spent"] + now["reserved"] <= limit, (step, now)
    assert now["reserved"] >= 0, (step, now)
    assert now["spent"] == now["cost"], (step, now)  # every recorded cost spent once, none twice
    assert now["reserved"] == now["held"], (step, now)  # what the budget holds is what its jobs hold
    uncovered = rows(
        "SELECT id, status, reserved_cost_usd FROM jobs WHERE api_key_id = %s"
        " AND status IN ('queued', 'processing') AND NOT coalesce(reserved_cost_usd, 0) > 0",
        key_id,
    )
    assert uncovered == [], (step, uncovered)  # a job that may still call a provider is covered


@pytest.fixture
def quick_env(runner: LocalRunner) -> Iterator[None]:
    """Retries without waiting, no flow control (nothing parked), fallbacks allowed to the fake's models."""
    saved = dict(os.environ)
    os.environ.update(PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]", PROMPTLAB_THROTTLE="false")
    os.environ.update(PROMPTLAB_ECONOMY_MIN_JOBS="1", PROMPTLAB_ECONOMY_MAX_WAIT_SECONDS="0")
    get_settings.cache_clear()
    yield
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


def set_fault(status: str) -> None:
    if status:
        os.environ["PROMPTLAB_FAKE_FAIL_STATUS"] = status
    else:
        os.environ.pop("PROMPTLAB_FAKE_FAIL_STATUS", None)
    get_settings.cache_clear()


def work(runner: LocalRunner) -> None:
    """One pass of every worker mapping and of the DLQ handler, without waiting for delayed messages."""
    assert runner.stack is not None
    for function in ("WorkerFunction", "DlqFunction"):
        pollers = [make_poller(runner, m) for m in runner.stack.mappings if m.function == function]
        for _ in range(6):
            if not sum(p.poll_once(wait_seconds=0) for p in pollers):
                break


Step = tuple[str, Any]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from(["plain", "json", "fallback", "economy"])),
        st.tuples(st.just("batch"), st.integers(min_value=2, max_value=4)),
        st.tuples(st.just("work"), st.sampled_from(FAULTS)),
        st.tuples(st.just("retry"), st.integers(min_value=0, max_value=5)),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=5)),
        st.tuples(st.just("redrive"), st.none()),
        st.tuples(st.just("economy"), st.none()),
        st.tuples(st.just("sweep"), st.none()),
    ),
    min_size=4,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps, limit=st.sampled_from([Decimal("0.004"), Decimal("0.01"), Decimal("0.03")]))
def test_no_sequence_of_operations_overspends_a_budget(
    runner: LocalRunner, quick_env: None, sequence: list[Step], limit: Decimal
) -> None:
    made = auth.create_key(name=unique("ceiling"), monthly_budget_usd=limit)
    template = call_api(
        runner, "POST", "/templates", api_key=made.key, body={"name": unique("c"), "body": "Say {{ t }}."}
    ).body
    jobs: list[str] = []

    def body(kind: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"templateId": template["id"], "input": unique("in"), "maxTokens": 400}
        if kind == "json":
            fields["responseFormat"] = UNSATISFIABLE
        elif kind == "fallback":
            fields["fallbacks"] = ["fake:fake-1"]
        elif kind == "economy":
            fields["priority"] = "economy"
        return fields

    for index, (op, arg) in enumerate(sequence):
        step = f"{index}:{op}:{arg}"
        if op == "submit":
            answer = call_api(runner, "POST", "/generate", api_key=made.key, body=body(arg))
            assert answer.status in {202, 402}, (step, answer.body)
            if answer.status == 202:
                jobs.append(answer.body["id"])
        elif op == "batch":
            items = [body("json" if n % 2 else "plain") for n in range(arg)]
            answer = call_api(runner, "POST", "/generate/batch", api_key=made.key, body={"items": items})
            assert answer.status == 202, (step, answer.body)
            for item in answer.body["items"]:
                assert "jobId" in item or item["error"]["code"] == "budget_exceeded", (step, item)
                if "jobId" in item:
                    jobs.append(item["jobId"])
        elif op == "work":
            set_fault(arg)
            work(runner)
            set_fault("")
        elif op in {"retry", "cancel"} and jobs:
            job_id = jobs[arg % len(jobs)]
            answer = call_api(runner, "POST", f"/jobs/{job_id}/{op}", api_key=made.key)
            assert answer.status in {200, 402, 409}, (step, answer.body)
        elif op == "redrive":
            answer = call_api(runner, "POST", "/dlq/redrive", api_key=made.key, body={})
            assert answer.status == 200, (step, answer.body)
        elif op == "economy":
            economy.run()
            economy.run()
        elif op == "sweep":
            sweeper.sweep()
        assert_ceiling(made.id, limit, step)
    # In the end every job ends, and an ended job holds nothing.
    set_fault("")
    for _ in range(4):
        work(runner)
        economy.run()
    sweeper.sweep()
    assert_ceiling(made.id, limit, "end")


def test_a_json_mode_job_reserves_every_attempt_and_a_retry_is_checked_again(
    clean_queues: LocalRunner, quick_env: None
) -> None:
    # Given a key with $0.01 a month and a JSON-mode request whose schema no answer satisfies
    runner = clean_queues
    made = auth.create_key(name=unique("json-budget"), monthly_budget_usd=Decimal("0.01"))
    template = call_api(
        runner, "POST", "/templates", api_key=made.key, body={"name": unique("j"), "body": "Say {{ t }}."}
    ).body
    request = {"templateId": template["id"], "input": "x", "maxTokens": 1000, "responseFormat": UNSATISFIABLE}
    # When it asks for 1,000 tokens: three billed calls could cost more than the budget
    refused = call_api(runner, "POST", "/generate", api_key=made.key, body=request)
    # Then it is refused at submit, naming what it would need
    assert refused.status == 402 and refused.body["error"]["code"] == "budget_exceeded"
    assert Decimal(refused.body["error"]["details"]["requestedUSD"]) > Decimal("0.015")

    # Given room for one such job (100 tokens), which spends all three attempts on invalid answers
    small = {**request, "maxTokens": 100}
    first = call_api(runner, "POST", "/generate", api_key=made.key, body=small)
    assert first.status == 202, first.body
    drain_queues(runner)
    failed = call_api(runner, "GET", f"/jobs/{first.body['id']}", api_key=made.key).body
    assert failed["status"] == "failed" and failed["attempts"] == 3 and failed["error"]["code"] == "invalid_output"
    assert_ceiling(made.id, Decimal("0.01"), "after the job")
    spent = ledger(made.id)["spent"]
    assert spent == Decimal(failed["estimatedCostUSD"]) > 0

    # When it is retried while another job holds most of the budget
    other = call_api(runner, "POST", "/generate", api_key=made.key, body={**small, "input": "y"})
    assert other.status == 202
    retried = call_api(runner, "POST", f"/jobs/{first.body['id']}/retry", api_key=made.key)
    # Then the retry is refused: it would not fit beside what is spent and reserved
    assert retried.status == 402 and retried.body["error"]["code"] == "budget_exceeded", retried.body
    assert call_api(runner, "GET", f"/jobs/{first.body['id']}", api_key=made.key).body["status"] == "failed"

    # When the other job ends, the retry fits, and its cost is spent once (the earlier attempts are not
    # spent again)
    drain_queues(runner)
    again = call_api(runner, "POST", f"/jobs/{first.body['id']}/retry", api_key=made.key)
    assert again.status == 200, again.body
    drain_queues(runner)
    final = call_api(runner, "GET", f"/jobs/{first.body['id']}", api_key=made.key).body
    assert final["attempts"] == 6
    assert_ceiling(made.id, Decimal("0.01"), "after the retry")
    other_cost = Decimal(
        call_api(runner, "GET", f"/jobs/{other.body['id']}", api_key=made.key).body["estimatedCostUSD"]
    )
    assert ledger(made.id)["spent"] == Decimal(final["estimatedCostUSD"]) + other_cost


def test_a_key_rate_limit_counts_every_batch_item(clean_queues: LocalRunner) -> None:
    # Given a key limited to 5 requests a window
    runner = clean_queues
    made = auth.create_key(name=unique("rpm-batch"), rpm_limit=5)
    template = call_api(runner, "POST", "/templates", api_key=made.key, body={"name": unique("r"), "body": "{{ t }}"})
    assert template.status == 201  # that was request 1
    items = [{"templateId": template.body["id"], "input": unique("i")} for _ in range(4)]
    # When a batch of 4 items uses the other 4
    first = call_api(runner, "POST", "/generate/batch", api_key=made.key, body={"items": items})
    assert first.status == 202 and first.header("X-RateLimit-Remaining") == "0"
    # Then a second batch of 2 is over the limit
    second = call_api(runner, "POST", "/generate/batch", api_key=made.key, body={"items": items[:2]})
    assert second.status == 429 and second.body["error"]["code"] == "rate_limited"
