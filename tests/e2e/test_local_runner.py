"""The README's walk-through, over HTTP, against `promptlab local` started as a subprocess."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.e2e.local_stack import request, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_stack(tmp_path_factory.mktemp("data")) as base:
        yield base


def test_the_readme_walk_through(local_stack: str) -> None:
    status, headers, template = request(
        local_stack,
        "POST",
        "/templates",
        {"name": f"blog-post-{uuid.uuid4().hex[:6]}", "body": "Write a blog post about {{ input }}."},
    )
    assert status == 201 and headers.get("ETag") == '"1"'

    status, _, job = request(local_stack, "POST", "/generate", {"templateId": template["id"], "input": "TypeScript"})
    assert status == 202 and job["status"] == "queued"

    deadline = time.monotonic() + 30
    while job["status"] in {"queued", "processing"}:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        status, _, job = request(local_stack, "GET", f"/jobs/{job['id']}")
        assert status == 200

    assert job["status"] == "completed", job
    assert "TypeScript" in job["output"]
    assert job["inputTokens"] > 0 and job["outputTokens"] > 0
    expected = (Decimal(job["inputTokens"]) * 1 + Decimal(job["outputTokens"]) * 5) / 1_000_000  # fake-1 prices
    assert Decimal(job["estimatedCostUSD"]) == expected


def test_errors_over_http_keep_the_error_shape(local_stack: str) -> None:
    status, headers, body = request(local_stack, "GET", "/nowhere")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, headers, body = request(local_stack, "POST", "/generate", {"templateId": "tpl_x"})
    assert status == 404 and body["error"]["requestId"] == headers["X-Request-Id"]
