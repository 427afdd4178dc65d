"""Our own stores failing under load: Postgres crashed and restarted, Redis lost and replaced by an empty
node. Every accepted job ends soon after the store is back, none is paid for twice, no answer is a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fault_run import FaultRun, StoreStack, cache_loss, database_crash, run, store_stack

pytestmark = pytest.mark.e2e

# Far below the queue's visibility timeout (1,800 s), which is how long a failed record used to wait.
ENDED_WITHIN_SECONDS = 90


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreStack]:
    with store_stack(Path(tmp_path_factory.mktemp("store-faults"))) as running:
        yield running


@pytest.fixture(scope="module")
def impatient_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreStack]:
    """A stack whose connections do not wait for a restarting database: requests are refused with a 503 and
    the worker gives its records back to the queue (what a longer outage does to every stack)."""
    folder = Path(tmp_path_factory.mktemp("store-faults-impatient"))
    with store_stack(folder, latency_ms=1000, extra_env={"PROMPTLAB_DB_CONNECT_WAIT_SECONDS": "0"}) as running:
        yield running


def assert_every_job_ended_once(result: FaultRun, capsys: pytest.CaptureFixture[str]) -> None:
    figures = result.figures()
    with capsys.disabled():  # how long the jobs took to end after the store came back, in every run's output
        print("\nstore fault figures: " + json.dumps(figures))
    # 200: the database failed after a request's job was written, so the request ran again and was answered
    # from that job's result (a free cache hit: `billed_twice` below stays 0)
    assert set(result.answers) <= {200, 202, 503}, figures
    assert figures["no_answer"] == 0 and figures["without_retry_after"] == 0, figures
    assert figures["ended_within_s_of_last_store_back"] is not None, figures
    assert figures["jobs"] == {"completed": figures["accepted"]}, figures
    assert figures["answered_twice"] == 0 and figures["billed_twice"] == 0, figures
    assert figures["interrupted_attempts"] == 0, figures


def test_jobs_accepted_around_a_database_crash_all_end_soon_after_it_restarts(
    stack: StoreStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 20 jobs a second for 10 s, and Postgres stopped at once after 2 s, back 5 s later
    timeline = database_crash(stack, at=2, down_for=5)
    # When the load runs through the crash
    result = run(stack, rate=20, seconds=10, timeline=timeline, wait_limit=ENDED_WITHIN_SECONDS)
    # Then every request had an answer (202, or 503 with Retry-After), every accepted job completed, once
    assert_every_job_ended_once(result, capsys)
    assert len(result.accepted) >= 100


def test_records_given_back_during_a_database_crash_run_once_it_restarts(
    impatient_stack: StoreStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack that does not wait for its database, 20 jobs a second for 10 s, Postgres down from 2 s to 7 s
    timeline = database_crash(impatient_stack, at=2, down_for=5)
    # When the load runs through the crash
    result = run(impatient_stack, rate=20, seconds=10, timeline=timeline, wait_limit=ENDED_WITHIN_SECONDS)
    # Then requests during the crash were refused with a 503, and every accepted job completed, once
    assert_every_job_ended_once(result, capsys)
    assert result.answers[503] > 0
    # And the worker gave records back to the queue, spending no attempt (each completed job made one)
    assert impatient_stack.logged("a store failed under the job; it comes back") > 0
    returned = impatient_stack.sql(
        "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND attempts > 1", result.accepted
    )
    assert returned[0]["n"] == 0


def test_jobs_accepted_around_a_lost_cache_node_all_end_and_limits_come_back(
    stack: StoreStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 20 jobs a second for 8 s, and Redis killed after 2 s, an empty one in its place 3 s later
    timeline = cache_loss(stack, at=2, down_for=3)
    # When the load runs through the loss
    result = run(stack, rate=20, seconds=8, timeline=timeline, wait_limit=ENDED_WITHIN_SECONDS)
    # Then requests during the loss were refused (the limiter fails closed) and every accepted job completed
    assert_every_job_ended_once(result, capsys)
    assert result.answers[503] > 0 and result.answers[202] > 0
    # And the empty node counts limits again: answers carry the limit's headers, counting down
    first = stack.exchange("GET", "/templates?limit=1")
    second = stack.exchange("GET", "/templates?limit=1")
    assert first[0] == second[0] == 200
    assert int(second[2]["X-RateLimit-Remaining"]) < int(first[2]["X-RateLimit-Remaining"])
