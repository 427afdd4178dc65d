"""The README's walk-through, over HTTP, against `promptlab local` started as a subprocess."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.support.local_stack import request

pytestmark = pytest.mark.e2e


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


def test_large_answers_are_gzipped_for_clients_that_ask(local_stack: str) -> None:
    import gzip
    import http.client
    from urllib.parse import urlsplit

    from tests.support.local_stack import KEYS

    target = urlsplit(local_stack)
    conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=10)
    auth = {"Authorization": f"Bearer {KEYS[local_stack]}"}
    conn.request("GET", "/openapi.json", headers={"Accept-Encoding": "gzip", **auth})
    big = conn.getresponse()
    raw = big.read()
    assert big.status == 200 and big.getheader("Content-Encoding") == "gzip"
    document = json.loads(gzip.decompress(raw))
    assert document["info"]["title"] == "PromptLab API" and len(raw) < len(gzip.decompress(raw)) / 3
    conn.request("GET", "/health", headers={"Accept-Encoding": "gzip", **auth})
    small = conn.getresponse()
    small.read()
    assert small.getheader("Content-Encoding") is None  # under the template's MinimumCompressionSize (1 KiB)
    conn.request("GET", "/openapi.json", headers=auth)
    plain = conn.getresponse()
    assert plain.getheader("Content-Encoding") is None and json.loads(plain.read())["openapi"]


def test_the_cli_generates_and_waits_for_the_output(local_stack: str) -> None:
    import subprocess
    import sys

    from tests.support.local_stack import KEYS

    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert request(local_stack, "POST", "/templates", {"name": name, "body": "Explain {{ topic }}."})[0] == 201
    command = [sys.executable, "-m", "promptlab.cli", "generate", name, "--input", "long polling", "--wait"]
    command += ["--url", local_stack, "--api-key", KEYS[local_stack]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Fake answer for: Explain long polling")
    assert " completed · fake/fake-1 · " in done.stderr and "$0." in done.stderr
    again = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert again.stdout == done.stdout and "cache hit (saved $" in again.stderr
    missing = subprocess.run(
        [*command[:4], "no-such-template", *command[5:]], capture_output=True, text=True, timeout=60, check=False
    )
    assert missing.returncode == 1 and "404 not_found" in missing.stderr


def _head_only(base_url: str, content_length: str) -> tuple[int, Any]:
    """POST /generate announcing `content_length` and sending no body; the answer's status and JSON."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        conn.putrequest("POST", "/generate")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", content_length)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        conn.close()


def test_the_gateway_refuses_a_huge_or_lying_body_before_reading_it(local_stack: str) -> None:
    # Given a request that announces 50 MB and sends none of it
    started = time.monotonic()
    status, body = _head_only(local_stack, "50000000")
    # Then it is a 413 at once, not a wait for 50 MB
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert time.monotonic() - started < 3
    # And a Content-Length that is not a byte count is a 400
    for bad in ("abc", "-5", "1e3", "12 34"):
        status, body = _head_only(local_stack, bad)
        assert status == 400 and body["error"]["code"] == "bad_request", (bad, body)


def _cli(local_stack: str, *args: str) -> Any:
    import subprocess
    import sys

    from tests.support.local_stack import KEYS

    command = [sys.executable, "-m", "promptlab.cli", *args, "--url", local_stack, "--api-key", KEYS[local_stack]]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def test_cli_variables_are_typed_by_the_template_schema_and_errors_name_the_field(local_stack: str) -> None:
    name = f"typed-{uuid.uuid4().hex[:8]}"
    schema = {
        "type": "object", "required": ["topic", "words"],
        "properties": {"topic": {"type": "string"}, "words": {"type": "integer", "maximum": 500}},
    }  # fmt: skip
    body = {"name": name, "body": "Explain {{ topic }} in {{ words }} words.", "variablesSchema": schema}
    assert request(local_stack, "POST", "/templates", body)[0] == 201
    done = _cli(local_stack, "generate", name, "--var", "topic=queues", "--var", "words=50", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"
    as_json = _cli(local_stack, "generate", name, "--var", "topic=q", "--var", "words:=40")
    assert as_json.returncode == 0, as_json.stderr
    # A value the schema cannot take is a usage error before any request; one the API refuses names its field
    wrong_type = _cli(local_stack, "generate", name, "--var", "topic=q", "--var", "words=fifty")
    assert wrong_type.returncode == 2 and "input.words is integer" in wrong_type.stderr
    too_many = _cli(local_stack, "generate", name, "--var", "topic=q", "--var", "words=5000")
    lines = [line for line in too_many.stderr.splitlines() if line.strip()]
    assert too_many.returncode == 1 and len(lines) == 1 and "; input.words: " in lines[0], too_many.stderr


def test_an_economy_job_ends_in_seconds_locally(local_stack: str) -> None:
    name = f"eco-{uuid.uuid4().hex[:8]}"
    assert request(local_stack, "POST", "/templates", {"name": name, "body": "Batch {{ x }}."})[0] == 201
    done = _cli(local_stack, "generate", name, "--input", "later", "--priority", "economy", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "completed" and job["lane"] == "economy" and job["batchId"]
    took = (datetime.fromisoformat(job["completedAt"]) - datetime.fromisoformat(job["createdAt"])).total_seconds()
    assert took < 40, took  # held 10 s locally (300 s in AWS), the lane runs every 5 s
