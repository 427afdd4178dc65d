"""Sliding-window rate limits on the real Redis, through the API handler."""

import threading
import time
from collections import Counter
from typing import Any

import pytest

from promptlab.infra.redis_client import get_redis
from promptlab.infra.request_limits import SlidingWindowLimiter
from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, call_api, random_ip, unique


@pytest.fixture
def template_id(runner: LocalRunner) -> str:
    made = call_api(runner, "POST", "/templates", body={"name": unique("rl"), "body": "{{ x }}"}).body
    template_id: str = made["id"]
    return template_id


def generate(runner: LocalRunner, template_id: str, ip: str) -> Any:
    return call_api(runner, "POST", "/generate", body={"templateId": template_id, "input": unique("x")}, source_ip=ip)


def test_exactly_the_limit_passes_and_the_next_gets_a_429(
    runner: LocalRunner, template_id: str, set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_RATE_LIMIT_GENERATE="5")
    ip = random_ip()
    answers = [generate(runner, template_id, ip) for _ in range(8)]
    assert [a.status for a in answers] == [202] * 5 + [429] * 3
    assert [a.header("X-RateLimit-Remaining") for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert all(a.header("X-RateLimit-Limit") == "5" for a in answers)
    denied = answers[5]
    assert denied.body["error"]["code"] == "rate_limited"
    assert 1 <= int(denied.header("Retry-After") or 0) <= 60
    assert denied.header("X-RateLimit-Reset") == denied.header("Retry-After")
    # Another client is counted apart; reads have their own budget; health is never limited.
    assert generate(runner, template_id, random_ip()).status == 202
    assert call_api(runner, "GET", f"/templates/{template_id}", source_ip=ip).status == 200
    health = call_api(runner, "GET", "/health", source_ip=ip)
    assert health.status == 200 and health.header("X-RateLimit-Limit") is None


def test_eight_concurrent_clients_share_one_budget_exactly(
    runner: LocalRunner, template_id: str, set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_RATE_LIMIT_GENERATE="25")
    ip = random_ip()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def client() -> None:
        for _ in range(5):
            status = generate(runner, template_id, ip).status
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == Counter({202: 25, 429: 15})


def test_the_window_slides_one_request_at_a_time() -> None:
    limiter = SlidingWindowLimiter(get_redis())
    key = f"test:{{rl}}:{unique('slide')}"

    def admit() -> bool:
        return limiter.admit({key: 3}, window_seconds=2).admitted

    assert admit()  # t = 0
    time.sleep(0.7)
    assert admit()  # t = 0.7
    time.sleep(0.7)
    assert admit()  # t = 1.4
    assert not admit()  # full
    time.sleep(0.75)  # t ≈ 2.15: only the first request has left the window
    assert admit()
    assert not admit()
    time.sleep(0.7)  # t ≈ 2.85: the second has left too
    assert admit()
    assert not admit()


def test_redis_down_is_a_503_by_default_and_passes_in_fail_open_mode(
    runner: LocalRunner, template_id: str, set_env: SetEnv
) -> None:
    from promptlab.infra.request_limits import get_limiter

    set_env(REDIS_URL="redis://127.0.0.1:1/0")
    get_redis.cache_clear()
    get_limiter.cache_clear()
    try:
        closed = generate(runner, template_id, random_ip())
        assert closed.status == 503 and closed.body["error"]["code"] == "dependency_unavailable"
        set_env(PROMPTLAB_RATE_LIMIT_FAIL_OPEN="true")
        opened = generate(runner, template_id, random_ip())
        # Through, uncounted and uncached: the job is accepted and will run.
        assert opened.status == 202 and opened.header("X-RateLimit-Limit") is None
    finally:
        get_redis.cache_clear()
        get_limiter.cache_clear()
