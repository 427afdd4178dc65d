"""The client's wire behaviour against a stand-in server: retries that honour Retry-After, typed errors, webhooks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from promptlab.client import (
    ApiUnreachable,
    Client,
    InvalidWebhook,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    ValidationError,
    verify_webhook,
)
from promptlab.local.services import free_port
from promptlab.tenancy.webhook_signing import SigningKeys, new_secret, signature_headers

Answer = tuple[int, dict[str, str], Any]


class StandIn:
    """Answers each request with the next scripted answer, and records what it was sent."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                stand_in.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
                status, headers, body = stand_in.answers.pop(0)
                raw = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def stand_in(request: pytest.FixtureRequest) -> Iterator[StandIn]:
    server = StandIn(request.param)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()


def error(code: str, message: str = "m", **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "requestId": "req-1", "details": details}}


def client_of(stand_in: StandIn, slept: list[float], retries: int = 3) -> Client:
    client = Client(stand_in.url, "pl_key", retry=RetryPolicy(max_retries=retries, base_seconds=0.25))
    client.transport.sleep = slept.append
    return client


JOB = {"id": "job_1", "jobId": "job_1", "status": "completed", "templateId": "tpl_1", "templateVersion": 1,
       "provider": "fake", "model": "fake-1", "priority": "normal", "input": {"x": "y"}, "attempts": 1,
       "maxAttempts": 3, "createdAt": "2026-12-01T00:00:00Z", "expiresAt": "2026-12-02T00:00:00Z",
       "updatedAt": "2026-12-01T00:00:01Z", "estimatedCostUSD": "0.000120", "output": "hi"}  # fmt: skip


@pytest.mark.parametrize(
    "stand_in",
    [[(429, {"Retry-After": "2"}, error("rate_limited")), (503, {}, error("dependency_unavailable")), (202, {}, JOB)]],
    indirect=True,
)
def test_429_and_503_are_sent_again_after_their_retry_after(stand_in: StandIn) -> None:
    slept: list[float] = []
    job = client_of(stand_in, slept).generate("tpl_1", "y", wait=False)
    assert job.id == "job_1" and str(job.estimated_cost_usd) == "0.000120"
    assert len(stand_in.seen) == 3 and slept[0] == 2.0  # the server's Retry-After, then a jittered backoff
    assert 0.125 <= slept[1] <= 0.5
    method, path, headers, body = stand_in.seen[0]
    assert (method, path) == ("POST", "/generate") and headers["Authorization"] == "Bearer pl_key"
    assert json.loads(body) == {"templateId": "tpl_1", "input": "y"}


@pytest.mark.parametrize("stand_in", [[(429, {"Retry-After": "1"}, error("rate_limited"))] * 3], indirect=True)
def test_retries_stop_at_the_policy_and_the_error_keeps_retry_after(stand_in: StandIn) -> None:
    slept: list[float] = []
    with pytest.raises(RateLimited) as limited:
        client_of(stand_in, slept, retries=2).jobs.get("job_1")
    assert limited.value.retry_after == 1.0 and slept == [1.0, 1.0] and len(stand_in.seen) == 3


@pytest.mark.parametrize(
    "stand_in", [[(422, {}, error("validation_error", fields=[{"field": "input.words", "message": "no"}]))]],
    indirect=True,
)  # fmt: skip
def test_a_refusal_is_never_retried_and_names_its_fields(stand_in: StandIn) -> None:
    slept: list[float] = []
    with pytest.raises(ValidationError) as bad:
        client_of(stand_in, slept).generate("tpl_1", {"words": "x"}, wait=False)
    assert [(f.field, f.message) for f in bad.value.fields] == [("input.words", "no")]
    assert bad.value.request_id == "req-1" and slept == [] and len(stand_in.seen) == 1


@pytest.mark.parametrize("stand_in", [[(503, {}, "<html>gateway</html>")] * 4], indirect=True)
def test_an_answer_that_is_not_ours_still_raises_a_typed_error(stand_in: StandIn) -> None:
    with pytest.raises(ServiceUnavailable) as down:
        client_of(stand_in, []).health()
    assert down.value.status == 503 and "gateway" in down.value.message


def test_nothing_answering_is_its_own_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiUnreachable) as unreachable:
        Client(url, "k").health()
    assert unreachable.value.url == url


def test_verify_webhook_accepts_what_promptlab_signs_and_nothing_else() -> None:
    secret, old = new_secret(), new_secret()
    body = json.dumps({"type": "job.completed", "data": {"id": "job_1"}}).encode()
    headers = signature_headers(
        SigningKeys(current=secret, previous=old), message_id="msg_1", timestamp=datetime.now(UTC), body=body
    )
    assert verify_webhook(headers, body, secret)["data"]["id"] == "job_1"
    assert verify_webhook({k.title(): v for k, v in headers.items()}, body, old)["type"] == "job.completed"
    with pytest.raises(InvalidWebhook):
        verify_webhook(headers, body.replace(b"job_1", b"job_2"), secret)
    with pytest.raises(InvalidWebhook):
        verify_webhook(headers, body, new_secret())
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    stale = signature_headers(SigningKeys(current=secret), message_id="m", timestamp=long_ago, body=body)
    with pytest.raises(InvalidWebhook):
        verify_webhook(stale, body, secret)
