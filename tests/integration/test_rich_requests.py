"""Richer requests: chat messages, stop sequences, topP, and JSON output validated on completion."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, call_api, drain_queues, job_through_worker, unique
from tests.support.provider_server import CORRECTION, ProviderServer

SCHEMA = {
    "type": "object",
    "required": ["title", "tags", "score"],
    "properties": {
        "title": {"type": "string", "minLength": 3},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
    },
}


def test_json_mode_retries_an_invalid_answer_with_the_error_and_bills_both_calls(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    set_env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=server.url + "/v1")
    job = job_through_worker(
        clean_queues,
        {
            "template": {"body": "Describe {{ x }} as JSON."},
            "input": "SQS",
            "provider": "openai",
            "model": "gpt-4.1-mini",
            "responseFormat": {"type": "json_schema", "schema": SCHEMA},
        },
    )
    assert job["status"] == "completed" and job["attempts"] == 2, job
    answer = json.loads(job["output"])
    assert len(answer["title"]) >= 3 and answer["tags"] and 1 <= answer["score"] <= 5
    first, second = (r["body"] for r in server.requests[-2:])
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"] == SCHEMA
    # The retry shows the model its broken answer and why it was refused.
    assert second["messages"][-2] == {"role": "assistant", "content": 'Sure! Here it is: {"title": '}
    assert second["messages"][-1]["content"].startswith(CORRECTION) and "not JSON" in second["messages"][-1]["content"]
    # Both calls were paid for: 2 × (36 input + 1,000 cached + 783 output) at gpt-4.1-mini prices.
    one_call = (36 * Decimal("0.40") + 1000 * Decimal("0.10") + 783 * Decimal("1.60")) / 1_000_000
    assert Decimal(job["estimatedCostUSD"]) == 2 * one_call
    assert job["inputTokens"] == 72 and job["outputTokens"] == 2 * 783
    history = [a["outcome"] for a in job["attemptHistory"]]
    assert history == ["error", "succeeded"] and job["attemptHistory"][0]["error"]["code"] == "invalid_output"


def test_json_mode_fails_with_the_reason_when_no_answer_is_valid(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    set_env(ANTHROPIC_API_KEY="test-key", ANTHROPIC_BASE_URL=server.url)
    job = job_through_worker(
        clean_queues,
        {
            "template": {"body": "Describe {{ x }}.", "system": "Be brief."},
            "input": "SQS",
            "provider": "anthropic",
            "model": "json-never",
            "responseFormat": {"type": "json_schema", "schema": SCHEMA},
        },
    )
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_output" and job["attempts"] == 3
    assert "not JSON" in job["error"]["message"]
    assert job["outputTokens"] == 3 * 783  # every call's tokens are kept (this model has no price)
    system = server.requests[-1]["body"]["system"][0]["text"]
    assert system.startswith("Be brief.") and "JSON Schema" in system and '"minLength":3' in system


def test_the_fake_provider_answers_json_that_fits_the_schema(clean_queues: LocalRunner) -> None:
    job = job_through_worker(
        clean_queues,
        {
            "template": {"body": "Rate {{ x }}."},
            "input": "SQS",
            "responseFormat": {"type": "json_schema", "schema": SCHEMA},
        },
    )
    assert job["status"] == "completed" and job["attempts"] == 1
    assert set(json.loads(job["output"])) == {"title", "tags", "score"}


@pytest.mark.parametrize(
    ("response_format", "field"),
    [
        ({"type": "json_schema"}, "responseFormat.schema"),
        ({"type": "json_schema", "schema": {"type": "nonsense"}}, "responseFormat.schema"),
        ({"type": "yaml"}, "responseFormat.type"),
    ],
)
def test_an_unusable_response_format_is_a_422(
    runner: LocalRunner, template: dict[str, Any], response_format: dict[str, Any], field: str
) -> None:
    body = {"templateId": template["id"], "input": "x", "responseFormat": response_format}
    answer = call_api(runner, "POST", "/generate", body=body)
    assert answer.status == 422 and answer.body["error"]["details"]["fields"][0]["field"] == field


def test_chat_messages_replace_the_body_and_fill_their_variables(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    set_env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=server.url + "/v1")
    job = job_through_worker(
        clean_queues,
        {
            "template": {"body": "Unused {{ other }}", "system": "You help with {{ product }}."},
            "input": {"product": "PromptLab", "question": "How do retries work?"},
            "provider": "openai",
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "user", "content": "Hi, I use {{ product }}."},
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "{{ question }}"},
            ],
            "stop": ["\n\n"],
            "topP": "0.9",
        },
    )
    assert job["status"] == "completed"
    sent = server.requests[-1]["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "You help with PromptLab."},
        {"role": "user", "content": "Hi, I use PromptLab."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "How do retries work?"},
    ]
    assert sent["stop"] == ["\n\n"] and sent["top_p"] == 0.9
    assert job["messages"][2]["content"] == "{{ question }}" and job["params"]["topP"] == "0.9"


def test_anthropic_gets_stop_sequences_and_top_p(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    set_env(ANTHROPIC_API_KEY="test-key", ANTHROPIC_BASE_URL=server.url)
    job = job_through_worker(
        clean_queues,
        {
            "template": {"body": "Explain {{ x }}"},
            "input": "SQS",
            "provider": "anthropic",
            "model": "claude-haiku-4-5",
            "stop": ["END"],
            "topP": "0.5",
        },
    )
    assert job["status"] == "completed"
    sent = server.requests[-1]["body"]
    assert sent["stop_sequences"] == ["END"] and sent["top_p"] == 0.5


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([{"role": "assistant", "content": "hi"}], "messages[0].role"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "messages[1].role"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "messages[1].role"),
        ([{"role": "system", "content": "a"}], "messages[0].role"),
    ],
)
def test_badly_ordered_messages_are_a_422(
    runner: LocalRunner, template: dict[str, Any], messages: list[dict[str, str]], field: str
) -> None:
    answer = call_api(runner, "POST", "/generate", body={"templateId": template["id"], "messages": messages})
    assert answer.status == 422 and answer.body["error"]["details"]["fields"][0]["field"] == field


def test_messages_take_part_in_the_cache_key(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    base = {"templateId": template["id"], "input": {"topic": unique("t")}}
    first = {**base, "messages": [{"role": "user", "content": "Tell me about {{ topic }}"}]}
    call_api(clean_queues, "POST", "/generate", body=first)
    drain_queues(clean_queues)
    assert call_api(clean_queues, "POST", "/generate", body=first).body["cacheHit"] is True
    other = {**base, "messages": [{"role": "user", "content": "Summarise {{ topic }}"}]}
    assert call_api(clean_queues, "POST", "/generate", body=other).status == 202


def test_the_fake_provider_stops_at_a_stop_sequence(clean_queues: LocalRunner) -> None:
    job = job_through_worker(
        clean_queues, {"template": {"body": "Explain {{ x }}"}, "input": "queues", "stop": ["answer"]}
    )
    assert job["output"] == "Fake " and job["finishReason"] == "stop_sequence"
