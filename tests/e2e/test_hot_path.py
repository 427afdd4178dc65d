"""The hot path as a user tries it: over HTTP, against `promptlab local` with two server processes
and the default limits, a repeated `POST /generate` is answered from the cache at no cost, and the 101st
generation of a client in a minute gets a 429 with its headers.

Speeds are the benchmarks' business (`./dev bench`); this checks the behaviour.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from tests.support.local_stack import request

pytestmark = pytest.mark.e2e


def test_a_repeat_is_a_free_cache_hit_and_the_101st_generation_is_refused(local_stack: str) -> None:
    # This module's stack is its own (tests/e2e/conftest.py): every generation of this client counts here.
    status, _, template = request(
        local_stack, "POST", "/templates", {"name": uuid.uuid4().hex, "body": "{{ x }} {{ y }}"}
    )
    assert status == 201
    body = {"templateId": template["id"], "input": {"x": "cache", "y": "hit"}}

    window_opened = time.monotonic()
    status, headers, first = request(local_stack, "POST", "/generate", body)
    assert status == 202 and headers["X-RateLimit-Limit"] == "100" and headers["X-RateLimit-Remaining"] == "99"
    status, _, first = request(local_stack, "GET", f"/jobs/{first['id']}?wait=20")
    assert status == 200 and first["status"] == "completed" and Decimal(first["estimatedCostUSD"]) > 0

    # The same input again, its keys in another order: answered from the cache.
    status, headers, again = request(local_stack, "POST", "/generate", {**body, "input": {"y": "hit", "x": "cache"}})
    assert status == 200 and headers["X-RateLimit-Remaining"] == "98"
    assert again["id"] != first["id"] and again["status"] == "completed" and again["cacheHit"] is True
    assert again["output"] == first["output"] and Decimal(again["estimatedCostUSD"]) == 0
    assert Decimal(again["savedCostUSD"]) == Decimal(first["estimatedCostUSD"])
    status, _, stored = request(local_stack, "GET", f"/jobs/{again['id']}")
    assert status == 200 and stored["cacheHit"] is True  # a job record, so usage counts it

    # Requests 3..100 pass (hits and misses alike: the budget counts requests), whichever process serves them.
    remaining = []
    for n in range(3, 101):
        status, headers, _ = request(local_stack, "POST", "/generate", {**body, "input": {"x": f"n{n % 3}", "y": ""}})
        assert status in {200, 202}, (n, status)
        remaining.append(int(headers["X-RateLimit-Remaining"]))
    assert remaining == list(range(97, -1, -1))

    status, headers, refused = request(local_stack, "POST", "/generate", body)
    assert status == 429 and refused["error"]["code"] == "rate_limited"
    assert headers["X-RateLimit-Limit"] == "100" and headers["X-RateLimit-Remaining"] == "0"
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= 60 and headers["X-RateLimit-Reset"] == headers["Retry-After"]
    # Room comes back when the minute's first request ages out (a sliding window), not at a fixed reset.
    elapsed = time.monotonic() - window_opened
    assert 60 - elapsed - 1 <= retry_after <= 60 - elapsed + 1
    # Reads have their own budget.
    assert request(local_stack, "GET", f"/jobs/{again['id']}")[0] == 200
