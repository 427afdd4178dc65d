"""Provider-aware throttling (issue 8): workers follow the provider's limits instead of spending attempts on 429s."""

from __future__ import annotations

import time
from typing import Any

from promptlab.infra import provider_throttle
from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, call_api, make_poller, rows, unique
from tests.support.provider_server import ProviderServer


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


def test_an_overload_storm_pauses_the_whole_provider(clean_queues: LocalRunner) -> None:
    provider = f"storm-{unique('p')}"
    assert provider_throttle.wait_seconds(provider, "any-model") == 0
    provider_throttle.note_failure(provider, "model-a", 529, None)
    first = provider_throttle.wait_seconds(provider, "model-b")  # another model of the same provider waits too
    assert 1 <= first <= 2.1
    provider_throttle.note_failure(provider, "model-a", 529, None)
    provider_throttle.note_failure(provider, "model-a", 529, None)
    assert provider_throttle.wait_seconds(provider, "model-c") > first  # the backoff grows with the storm
    provider_throttle.note_failure(f"{provider}-x", "m", 429, 2.5)
    assert (
        2 <= provider_throttle.wait_seconds(f"{provider}-x", "m") <= 2.6
        and provider_throttle.wait_seconds(f"{provider}-x", "n") == 0
    )


def test_reset_headers_of_both_providers_are_understood(clean_queues: LocalRunner) -> None:
    anthropic: dict[str, Any] = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3)),
        "anthropic-ratelimit-tokens-remaining": "90000",
        "anthropic-ratelimit-tokens-reset": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1)),
    }
    name = unique("hdr")
    provider_throttle.note_headers(name, "claude", anthropic)
    assert 1.5 < provider_throttle.wait_seconds(name, "claude") <= 3.1
    provider_throttle.note_headers(
        name, "gpt", {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"}
    )
    assert (
        55 < provider_throttle.wait_seconds(name, "gpt") <= 60
    )  # 90 s asked, capped at PROMPTLAB_THROTTLE_MAX_PAUSE_SECONDS
    provider_throttle.note_headers(
        name, "ok", {"x-ratelimit-remaining-requests": "12", "x-ratelimit-reset-requests": "6m0s"}
    )
    assert provider_throttle.wait_seconds(name, "ok") == 0
