"""Provider-aware throttling: workers follow the provider's limits instead of spending attempts on 429s."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from promptlab.infra import provider_throttle
from promptlab.local.runner import LocalRunner
from promptlab.local.stack import SqsMapping
from tests.support import SetEnv, call_api, generate, make_poller, queued_messages, rows, unique
from tests.support.provider_server import ProviderServer


def normal_lane(runner: LocalRunner) -> SqsMapping:
    """The worker's mapping of the normal-priority queue (where `POST /generate` puts a job by default)."""
    assert runner.stack is not None
    return next(m for m in runner.stack.mappings if m.queue_logical_id == "JobQueueNormal")


@pytest.fixture
def openai_jobs(clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv) -> SqsMapping:
    """Jobs for `openai` go to the OpenAI stand-in (its models `sleep-<ms>`, `throttle-once`, …); the normal
    lane's mapping, which the test drives."""
    set_env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=server.url + "/v1")
    return normal_lane(clean_queues)


def attempt_outcomes(job_id: str) -> list[str]:
    return [a["outcome"] for a in rows("SELECT outcome FROM job_attempts WHERE job_id = %s ORDER BY n", job_id)]


def back_after_a_second(runner: LocalRunner, job_id: str) -> list[Any]:
    """The job's message, parked for a second: once the delay is over it is on the normal queue (and alone)."""
    time.sleep(1.1)
    again = queued_messages(runner, "JobQueueNormal")
    assert [m["Body"] for m in again] == [f'{{"jobId":"{job_id}","v":1}}']
    return again


def run_workers_until_done(runner: LocalRunner, job_ids: list[str], deadline_seconds: float = 60) -> None:
    assert runner.stack is not None
    pollers = [make_poller(runner, m) for m in runner.stack.mappings if m.function == "WorkerFunction"]
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        for poller in pollers:
            poller.poll_once(wait_seconds=0)
        open_jobs = rows(
            "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND status IN ('queued', 'processing')", job_ids
        )
        if open_jobs[0]["n"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError("jobs did not finish in time")


def test_workers_follow_the_providers_limit_instead_of_spending_attempts(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    set_env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=server.url + "/v1", PROMPTLAB_RETRY_BACKOFF_SECONDS="[1]")
    server.limited_log.clear()
    made = call_api(clean_queues, "POST", "/templates", body={"name": unique("thr"), "body": "Say {{ x }}"}).body
    job_ids = []
    for index in range(12):
        body = {"templateId": made["id"], "input": f"{index}", "provider": "openai", "model": "limited"}
        answer = call_api(clean_queues, "POST", "/generate", body=body)
        assert answer.status == 202, answer.body
        job_ids.append(answer.body["id"])
    run_workers_until_done(clean_queues, job_ids)
    jobs = rows("SELECT status, attempts FROM jobs WHERE id = ANY(%s)", job_ids)
    assert [j["status"] for j in jobs] == ["completed"] * 12
    refused = sum(1 for _, status in server.limited_log if status == 429)
    answered = [t for t, status in server.limited_log if status == 200]
    # Attempts spent on 429s stay near zero: the workers paused the model when its remaining budget hit 0.
    assert sum(j["attempts"] for j in jobs) - 12 == refused <= 2, server.limited_log
    # Throughput follows the limit: never more than LIMIT answers in any WINDOW, so 12 took ≥ 2 windows.
    assert answered[-1] - answered[0] >= (12 / server.LIMIT - 1) * server.WINDOW * 0.9


def congest(route: tuple[str, str], calls: int, outcome: provider_throttle.Outcome = "congested") -> None:
    """`calls` calls of the route that take a slot and end with `outcome`."""
    for n in range(calls):
        assert provider_throttle.reserve(*route, token=f"t{n}", lease_seconds=30).held
        provider_throttle.settle(*route, token=f"t{n}", outcome=outcome)


def test_a_single_529_slows_the_route_but_does_not_stop_it(clean_queues: LocalRunner) -> None:
    # Given a fresh route (limit 4)
    route = (unique("p"), "m")
    # When one call is overloaded
    congest(route, 1)
    # Then the limit shrinks by 30 %, and the next call still goes ahead
    state = provider_throttle.state(*route)
    assert (round(state.limit, 3), state.paused_for) == (2.8, 0)
    # And a second congestion in the same window does not cut again (random faults must not collapse it)
    congest(route, 1)
    assert round(provider_throttle.state(*route).limit, 3) == 2.8
    assert provider_throttle.reserve(*route, token="next", lease_seconds=30).held


def test_successes_grow_the_limit_fast_until_the_first_cut_then_slowly(clean_queues: LocalRunner) -> None:
    route = (unique("p"), "m")
    congest(route, 1, "ok")  # slow start: one more per success
    assert provider_throttle.state(*route).limit == 5
    congest(route, 1, "limited")  # a 429 halves it
    congest(route, 1, "ok")  # after a cut: one more per round of `limit` successes
    assert round(provider_throttle.state(*route).limit, 4) == round(2.5 + 1 / 2.5, 4)


def test_a_sustained_failure_rate_pauses_the_route_then_one_probe_at_a_time(clean_queues: LocalRunner) -> None:
    # Given a route whose calls all fail (an outage)
    route = (unique("p"), "m")
    congest(route, 3)
    assert provider_throttle.state(*route).paused_for == 0  # 3 calls are not yet a rate
    congest(route, 1)
    # Then it pauses for 1 s, and a job asking meanwhile is told to wait
    assert 0.8 < provider_throttle.state(*route).paused_for <= 1.0
    assert 0.8 < provider_throttle.reserve(*route, token="early", lease_seconds=30).wait_seconds <= 1.0
    # When the pause is over, one probe call goes; a second one waits for its slot
    time.sleep(1.05)
    assert provider_throttle.reserve(*route, token="probe", lease_seconds=30).held
    assert provider_throttle.reserve(*route, token="second", lease_seconds=30).slots_taken
    # And a failed probe pauses it again, twice as long
    provider_throttle.settle(*route, token="probe", outcome="congested")
    assert 1.8 < provider_throttle.state(*route).paused_for <= 2.0


def test_a_slot_whose_worker_died_expires_with_its_lease(clean_queues: LocalRunner, set_env: SetEnv) -> None:
    set_env(PROMPTLAB_FLOW_INITIAL_CONCURRENCY="1")
    route = (unique("p"), "m")
    assert provider_throttle.reserve(*route, token="dies", lease_seconds=0.2).held
    assert provider_throttle.reserve(*route, token="waits", lease_seconds=30).slots_taken
    time.sleep(0.25)
    assert provider_throttle.reserve(*route, token="goes", lease_seconds=30).held


def test_a_providers_reset_headers_bound_the_route_until_the_reset(clean_queues: LocalRunner) -> None:
    anthropic: dict[str, Any] = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3)),
        "anthropic-ratelimit-tokens-remaining": "90000",
        "anthropic-ratelimit-tokens-reset": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1)),
    }
    claude, gpt, ok = (unique("hdr"), "claude"), (unique("hdr"), "gpt"), (unique("hdr"), "ok")
    for route, headers in (
        (claude, anthropic),
        (gpt, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"}),
        (ok, {"x-ratelimit-remaining-requests": "12", "x-ratelimit-reset-requests": "6m0s"}),
    ):
        assert provider_throttle.reserve(*route, token="a", lease_seconds=30).held
        provider_throttle.settle(*route, token="a", outcome="ok", headers=headers)
    assert 1.5 < provider_throttle.reserve(*claude, token="b", lease_seconds=30).wait_seconds <= 3.1
    # 90 s asked, capped at PROMPTLAB_THROTTLE_MAX_PAUSE_SECONDS
    assert 55 < provider_throttle.reserve(*gpt, token="b", lease_seconds=30).wait_seconds <= 60
    assert provider_throttle.reserve(*ok, token="b", lease_seconds=30).held


def test_a_job_waiting_for_its_route_is_parked_without_an_attempt_or_a_receive(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    # Given a job whose route (the fake provider's model) is paused by an outage
    job = generate(clean_queues, template)
    congest(("fake", "fake-1"), 4)
    # When a worker receives its message
    normal = normal_lane(clean_queues)
    assert make_poller(clean_queues, normal).poll_once(wait_seconds=0) == 1
    # Then the job is untouched, and its message is back on the queue as a new one, delayed
    stored = rows("SELECT status, attempts FROM jobs WHERE id = %s", job["id"])
    assert stored == [{"status": "queued", "attempts": 0}]
    assert queued_messages(clean_queues, "JobQueueNormal") == []  # not visible during the delay
    again = back_after_a_second(clean_queues, job["id"])
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "1"  # a new message: its count starts again


def test_a_reported_budget_seeds_a_fresh_routes_limit_by_littles_law(clean_queues: LocalRunner) -> None:
    # Given a fresh route (limit 4) whose provider reports 3,000 calls left until a reset 60 s away
    route = (unique("p"), "m")
    reset = (datetime.now(UTC) + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    headers = {"anthropic-ratelimit-requests-remaining": "3000", "anthropic-ratelimit-requests-reset": reset}
    # When a 2-second call succeeds
    assert provider_throttle.reserve(*route, token="t", lease_seconds=30).held
    provider_throttle.settle(*route, token="t", outcome="ok", headers=headers, latency_seconds=2)
    # Then the limit is what that budget sustains, 3,000 × 2 s ÷ 60 s ≈ 100, capped at the maximum (64)
    assert provider_throttle.state(*route).limit == 64
    # And a tight budget (3 calls left in the next second, 10 ms calls) seeds nothing: slow start goes on
    tight = (unique("p"), "m")
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert provider_throttle.reserve(*tight, token="t", lease_seconds=30).held
    provider_throttle.settle(
        *tight,
        token="t",
        outcome="ok",
        headers={"anthropic-ratelimit-requests-remaining": "3", "anthropic-ratelimit-requests-reset": soon},
        latency_seconds=0.01,
    )
    assert provider_throttle.state(*tight).limit == 5


def test_bad_luck_under_random_faults_is_not_taken_for_an_outage(clean_queues: LocalRunner) -> None:
    # Given a fresh route whose first four calls see three failures (8 % likely at a 30 % random fault rate)
    route = (unique("p"), "m")
    congest(route, 1, "failed")
    congest(route, 1, "ok")
    congest(route, 2, "failed")
    # Then it is not paused: 3 of 4 is not evidence that most calls fail
    assert provider_throttle.state(*route).paused_for == 0
    # But four of four failing is
    other = (unique("p"), "m")
    congest(other, 4, "failed")
    assert provider_throttle.state(*other).paused_for > 0


def test_a_record_finding_every_slot_taken_waits_for_its_invocations_call_instead_of_parking(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv, tmp_path: Any
) -> None:
    # Given a route with one slot, 200 ms calls, and three jobs received in one batch
    calls = tmp_path / "calls.log"
    set_env(PROMPTLAB_FLOW_INITIAL_CONCURRENCY="1", PROMPTLAB_FAKE_LATENCY_MS="200", PROMPTLAB_FAKE_CALL_LOG=str(calls))
    jobs = [generate(clean_queues, template)["id"] for _ in range(3)]
    normal = normal_lane(clean_queues)
    # When the invocation runs them
    assert make_poller(clean_queues, normal).poll_once(wait_seconds=0) == 3
    # Then the two that found the slot taken waited for the call holding it (it was this invocation's, and it
    # kept the invocation alive anyway) and ran: none was parked to the back of the queue
    stored = rows("SELECT status, attempts FROM jobs WHERE id = ANY(%s)", jobs)
    assert stored == [{"status": "completed", "attempts": 1}] * 3
    assert queued_messages(clean_queues, "JobQueueNormal") == []
    # The second call began after the first's 200 ms, as the route's one slot allowed (the fake notes when
    # each call begins; the limit grew to 2 with the first success, so the third may overlap the second)
    began = sorted(float(line.split()[0]) for line in calls.read_text().splitlines())
    assert len(began) == 3 and began[1] - began[0] >= 0.19

    # But when the slot is held elsewhere (another worker), nothing here will free it soon: parked at once
    job = generate(clean_queues, template)["id"]
    provider_throttle.forget("fake", "fake-1")  # one slot again
    assert provider_throttle.reserve("fake", "fake-1", token="elsewhere", lease_seconds=30).held
    started = time.monotonic()
    assert make_poller(clean_queues, normal).poll_once(wait_seconds=0) == 1
    assert time.monotonic() - started < 0.9  # it did not sit out the slot wait in the invocation
    assert rows("SELECT status, attempts FROM jobs WHERE id = %s", job) == [{"status": "queued", "attempts": 0}]
    back_after_a_second(clean_queues, job)


def test_a_429_is_sat_out_in_the_invocation_while_its_other_calls_run_else_the_job_is_parked(
    clean_queues: LocalRunner, template: dict[str, Any], openai_jobs: SqsMapping
) -> None:
    # Given one batch: a job whose first call the provider refuses (429, retry-after 1 s), beside a 1.5 s call
    beside = generate(clean_queues, template, provider="openai", model="sleep-1500")["id"]
    throttled = generate(clean_queues, template, provider="openai", model="throttle-once")["id"]
    # When the invocation runs them
    assert make_poller(clean_queues, openai_jobs).poll_once(wait_seconds=0) == 2
    # Then the refused job waited its second in the invocation (kept alive by the other call anyway), kept its
    # place in line and its attempts, and was answered: no message went back to the queue
    assert attempt_outcomes(throttled) == ["throttled", "succeeded"]
    assert attempt_outcomes(beside) == ["succeeded"]
    assert queued_messages(clean_queues, "JobQueueNormal") == []

    # But alone in its invocation, waiting would be all the invocation does: it is parked for the second
    alone = generate(clean_queues, template, provider="openai", model="throttle-once")["id"]
    assert make_poller(clean_queues, openai_jobs).poll_once(wait_seconds=0) == 1
    assert attempt_outcomes(alone) == ["throttled"]
    assert rows("SELECT status FROM jobs WHERE id = %s", alone) == [{"status": "queued"}]
    back_after_a_second(clean_queues, alone)


def test_a_record_never_waits_on_another_invocations_call(
    clean_queues: LocalRunner, template: dict[str, Any], openai_jobs: SqsMapping
) -> None:
    # The local runner runs invocations side by side in one process, where Lambda gives each its own sandbox:
    # a call of another invocation does not keep this one alive, so waiting on it would bill this one for nothing
    # Given an invocation busy with a 1.5 s call
    beside = generate(clean_queues, template, provider="openai", model="sleep-1500")["id"]
    busy = threading.Thread(target=make_poller(clean_queues, openai_jobs).poll_once, kwargs={"wait_seconds": 0})
    busy.start()
    deadline = time.monotonic() + 5
    while not rows("SELECT 1 FROM job_attempts WHERE job_id = %s", beside) and time.monotonic() < deadline:
        time.sleep(0.02)
    # When another invocation, alone with its record, meets a 429 (retry-after 1 s) meanwhile
    throttled = generate(clean_queues, template, provider="openai", model="throttle-once")["id"]
    assert make_poller(clean_queues, openai_jobs).poll_once(wait_seconds=0) == 1
    busy.join()
    # Then its job was parked, not sat out beside the other invocation's call
    assert attempt_outcomes(throttled) == ["throttled"]
    assert rows("SELECT status FROM jobs WHERE id = ANY(%s) ORDER BY status", [beside, throttled]) == [
        {"status": "completed"},
        {"status": "queued"},
    ]
    back_after_a_second(clean_queues, throttled)


def test_an_overload_slows_a_route_without_ending_its_slow_start_and_a_429_ends_it(clean_queues: LocalRunner) -> None:
    # Given two fresh routes (limit 4) whose first call succeeded (slow start: 5)
    busy, refused = (unique("p"), "m"), (unique("p"), "m")
    for route in (busy, refused):
        congest(route, 1, "ok")
        assert provider_throttle.state(*route).limit == 5
    # When one meets an overload (the provider is busy) and the other a 429 (our own ceiling)
    congest(busy, 1, "congested")
    congest(refused, 1, "limited")
    # Then the overload took 30 % off and the route still grows one per success
    assert provider_throttle.state(*busy).limit == 3.5
    congest(busy, 2, "ok")
    assert provider_throttle.state(*busy).limit == 5.5
    # While the 429 halved it and it grows one per round of successes from there
    assert provider_throttle.state(*refused).limit == 2.5
    congest(refused, 1, "ok")
    assert round(provider_throttle.state(*refused).limit, 2) == 2.9


def test_a_failed_probe_waits_past_the_pause_it_started_so_the_next_probe_is_another_job(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv, monkeypatch: Any, tmp_path: Any
) -> None:
    from promptlab.infra.job_queue import get_queue

    # Given an outage that paused the route for 1 s, and a job received once the pause is over
    outage = tmp_path / "outage"
    outage.touch()
    set_env(PROMPTLAB_FAKE_OUTAGE_FILE=str(outage))
    congest(("fake", "fake-1"), 4)
    job = generate(clean_queues, template)["id"]
    delays: list[int] = []
    queue = get_queue()
    real_delay = queue.delay

    def delayed(*, source_arn: str, receipt_handle: str, seconds: int) -> None:
        delays.append(seconds)
        real_delay(source_arn=source_arn, receipt_handle=receipt_handle, seconds=seconds)

    monkeypatch.setattr(queue, "delay", delayed)
    time.sleep(1.05)
    normal = normal_lane(clean_queues)
    # When it is the probe and the provider is still down (529): the route pauses again, for 2 s
    assert make_poller(clean_queues, normal).poll_once(wait_seconds=0) == 1
    assert rows("SELECT status, attempts FROM jobs WHERE id = %s", job) == [{"status": "queued", "attempts": 1}]
    assert 1.8 < provider_throttle.state("fake", "fake-1").paused_for <= 2.0
    # Then it comes back after that pause and a second more, not with its 1 s backoff (which would end just
    # as the pause does, first in line to be the next probe: one job spending every attempt on the outage)
    assert delays == [3]


def test_after_a_cut_a_route_of_long_calls_grows_at_least_a_slot_a_second(clean_queues: LocalRunner) -> None:
    # Given routes cut by a 429 to 2.5 slots (their first call succeeded: 5, then halved)
    quick, long_calls = (unique("p"), "m"), (unique("p"), "m")
    for route in (quick, long_calls):
        congest(route, 1, "ok")
        congest(route, 1, "limited")
        assert provider_throttle.state(*route).limit == 2.5

    def succeed(route: tuple[str, str], seconds: float) -> float:
        assert provider_throttle.reserve(*route, token="t", lease_seconds=30).held
        provider_throttle.settle(*route, token="t", outcome="ok", latency_seconds=seconds)
        return round(provider_throttle.state(*route).limit, 2)

    # When a 100 ms call succeeds, the route grows one per round of 2.5 calls (TCP): 0.4
    assert succeed(quick, 0.1) == 2.9
    # But a 2 s call is a round that takes 2 s: one slot a second is 0.8 a call (2 s × 1/s ÷ 2.5 calls)
    assert succeed(long_calls, 2) == 3.3
    # And never more than one per success, however long the call (a 20 s call: 1, not 8)
    assert succeed(long_calls, 20) == 4.3
