"""The OpenAI door's wire shaping (pure functions): errors, finish reasons, the event stream, parameter names."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from promptlab.api.openai_door import event_stream, openai_error
from promptlab.core.errors import ValidationFailed
from promptlab.jobs.chat import parameter
from promptlab.jobs.openai_answers import completion
from promptlab.jobs.openai_turns import turns_of
from promptlab.models.jobs import JobPublic
from promptlab.models.openai_chat import ChatRequest


def _error(code: str, status: int, **details: object) -> dict[str, object]:
    body = {"error": {"code": code, "message": "m", "requestId": "r", "details": details}}
    return {"statusCode": status, "body": json.dumps(body), "headers": {}}


@pytest.mark.parametrize(
    ("code", "status", "details", "expected"),
    [
        ("validation_error", 422, {"fields": [{"field": "max_tokens", "message": "x"}]},
         (400, "invalid_request_error", "invalid_value", "max_tokens")),
        ("unauthorized", 401, {}, (401, "invalid_request_error", "invalid_api_key", None)),
        ("budget_exceeded", 402, {}, (429, "insufficient_quota", "insufficient_quota", None)),
        ("not_found", 404, {"param": "model", "openaiCode": "model_not_found"},
         (404, "invalid_request_error", "model_not_found", "model")),
        ("rate_limited", 429, {}, (429, "requests", "rate_limit_exceeded", None)),
        ("dependency_unavailable", 503, {}, (503, "server_error", "service_unavailable", None)),
        ("internal_error", 500, {}, (500, "server_error", "internal_error", None)),
    ],
)  # fmt: skip
def test_our_errors_become_openais(code: str, status: int, details: dict[str, object], expected: tuple) -> None:  # type: ignore[type-arg]
    answer = openai_error(_error(code, status, **details))
    error = json.loads(answer["body"])["error"]
    assert (answer["statusCode"], error["type"], error["code"], error["param"]) == expected
    assert set(error) == {"message", "type", "param", "code"}


def test_answers_that_are_not_our_errors_are_left_alone() -> None:
    ok = {"statusCode": 200, "body": "{}"}
    theirs = {"statusCode": 504, "body": json.dumps({"error": {"message": "m", "type": "timeout", "code": "x"}})}
    assert openai_error(ok) is ok and openai_error(theirs) is theirs


def _job(**fields: object) -> JobPublic:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    base: dict[str, object] = {
        "id": "job_1", "job_id": "job_1", "status": "completed", "template_id": "tpl_1", "template_version": 1,
        "provider": "anthropic", "model": "claude-haiku-4-5", "priority": "normal", "input": {}, "attempts": 1,
        "max_attempts": 3, "created_at": now, "expires_at": now, "updated_at": now, "output": "hello",
        "input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 100, "cache_write_tokens": 0,
        "answered_by": "anthropic/claude-haiku-4-5-20251001",
    }  # fmt: skip
    return JobPublic.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("finish", "truncated", "expected"),
    [("end_turn", False, "stop"), ("max_tokens", True, "length"), ("stop_sequence", False, "stop"),
     ("refusal", False, "content_filter"), ("length", True, "length"), ("content_filtered", False, "content_filter")],
)  # fmt: skip
def test_each_providers_stop_reason_is_openais_finish_reason(finish: str, truncated: bool, expected: str) -> None:
    assert completion(_job(finish_reason=finish, truncated=truncated)).choices[0].finish_reason == expected


def test_usage_counts_cached_prompt_tokens_and_the_model_is_the_one_that_answered() -> None:
    answer = completion(_job())
    assert (answer.usage.prompt_tokens, answer.usage.prompt_tokens_details.cached_tokens) == (110, 100)
    assert answer.usage.total_tokens == 115 and answer.model == "claude-haiku-4-5-20251001"


def test_the_event_stream_is_openais_chunks_ending_with_done() -> None:
    text = event_stream(completion(_job(output="x" * 450, finish_reason="end_turn")), include_usage=True)
    events = text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "x" * 450
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]["completion_tokens"] == 5


def test_turns_are_joined_by_role_and_must_start_and_end_with_the_user() -> None:
    chat = ChatRequest.model_validate({"model": "m", "messages": [
        {"role": "developer", "content": "rules"}, {"role": "user", "content": "a"},
        {"role": "user", "content": "b"}]})  # fmt: skip
    assert turns_of(chat) == [{"role": "system", "content": "rules"}, {"role": "user", "content": "a\n\nb"}]
    ends_with_assistant = ChatRequest.model_validate({"model": "m", "messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})  # fmt: skip
    with pytest.raises(ValidationFailed, match="last turn"):
        turns_of(ends_with_assistant)


def test_promptlab_field_names_become_the_chats_parameters() -> None:
    assert [parameter(f) for f in ("maxTokens", "input.topic", "topP", "provider", "temperature")] == [
        "max_tokens", "promptlab.variables.topic", "top_p", "model", "temperature"]  # fmt: skip
