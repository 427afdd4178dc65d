"""The HTTP contract around every answer: request ids, CORS per origin."""

from __future__ import annotations

from typing import Any

from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, call_api


def test_every_answer_carries_its_request_id(runner: LocalRunner) -> None:
    answers = [
        call_api(runner, "GET", "/templates"),
        call_api(runner, "GET", "/templates/tpl_missing"),
        call_api(runner, "GET", "/templates", api_key=None),
        call_api(runner, "POST", "/generate", raw_body="{nope"),
        call_api(runner, "OPTIONS", "/templates"),
    ]
    for answer in answers:
        request_id = answer.header("X-Request-Id")
        assert request_id, answer
        if answer.body is not None and "error" in answer.body:
            assert answer.body["error"]["requestId"] == request_id


def test_cors_answers_allowed_origins_only(runner: LocalRunner, set_env: SetEnv) -> None:
    set_env(PROMPTLAB_CORS_ORIGINS="https://app.example.com, https://admin.example.com")
    origin = {"Origin": "https://app.example.com"}
    preflight: dict[str, Any] = {**origin, "Access-Control-Request-Method": "POST"}
    allowed = call_api(runner, "OPTIONS", "/generate", headers=preflight, api_key=None)
    assert allowed.status == 204 and allowed.header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert "Authorization" in (allowed.header("Access-Control-Allow-Headers") or "")
    assert "POST" in (allowed.header("Access-Control-Allow-Methods") or "")
    read = call_api(runner, "GET", "/templates", headers=origin)
    assert read.header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert "X-Request-Id" in (read.header("Access-Control-Expose-Headers") or "")
    # Errors too: a page must be able to read why it was refused.
    refused = call_api(runner, "GET", "/templates", headers=origin, api_key=None)
    assert refused.status == 401 and refused.header("Access-Control-Allow-Origin") == "https://app.example.com"
    stranger = {"Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"}
    denied = call_api(runner, "OPTIONS", "/generate", headers=stranger, api_key=None)
    assert denied.status == 204 and denied.header("Access-Control-Allow-Origin") is None
    assert call_api(runner, "GET", "/templates", headers=stranger).header("Access-Control-Allow-Origin") is None
    set_env(PROMPTLAB_CORS_ORIGINS="")
    assert call_api(runner, "GET", "/templates", headers=origin).header("Access-Control-Allow-Origin") is None
