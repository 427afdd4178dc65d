"""Tool use and attachments through `POST /generate` and templates: the same jobs the OpenAI door makes."""

from __future__ import annotations

from typing import Any

import pytest

from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, call_api, drain_queues, job_through_worker, unique
from tests.support.provider_server import ProviderServer

WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}  # fmt: skip
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _generate(runner: LocalRunner, body: dict[str, Any]) -> dict[str, Any]:
    answer = call_api(runner, "POST", "/generate", body=body)
    assert answer.status == 202, answer.body
    drain_queues(runner)
    job: dict[str, Any] = call_api(runner, "GET", f"/jobs/{answer.body['id']}").body
    return job


def test_a_tool_round_trip_through_generate(clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv) -> None:
    set_env(ANTHROPIC_API_KEY="test-key", ANTHROPIC_BASE_URL=server.url)
    # Given a template and a tool the model may call
    first = job_through_worker(clean_queues, {
        "template": {"body": "What is the weather in {{ city }}?"}, "input": {"city": unique("Paris")},
        "provider": "anthropic", "model": "claude-haiku-4-5", "tools": [WEATHER],
    })  # fmt: skip
    # Then the job ends with the call the model asked for (and its text), never run here
    assert first["status"] == "completed" and first["finishReason"] == "tool_use" and first["truncated"] is False
    call = first["toolCalls"][0]
    assert (
        call["name"] == "get_weather"
        and call["arguments"] == '{"city": "Paris"}'
        and first["output"] == "Let me check."
    )
    # When the caller sends the call's result back as a tool turn
    second = _generate(clean_queues, {
        "templateId": first["templateId"], "provider": "anthropic", "model": "claude-haiku-4-5", "tools": [WEATHER],
        "input": first["input"],
        "messages": [{"role": "user", "content": "What is the weather in {{ city }}?"},
                     {"role": "assistant", "content": "Let me check.", "toolCalls": [call]},
                     {"role": "tool", "toolCallId": call["id"], "content": "18 degrees"}],
    })  # fmt: skip
    # Then the model answers from it, and Anthropic saw its own tool_use / tool_result blocks
    assert second["status"] == "completed" and second["output"] == "Claude says: 18 degrees" and not second["toolCalls"]
    sent = server.requests[-1]["body"]
    assert sent["messages"][1]["content"][-1] == {"type": "tool_use", "id": call["id"], "name": "get_weather",
                                                  "input": {"city": "Paris"}}  # fmt: skip
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"


def test_a_template_carries_its_tools(clean_queues: LocalRunner) -> None:
    job = job_through_worker(clean_queues, {
        "template": {"body": "Look up {{ city }}", "defaults": {"tools": [WEATHER], "toolChoice": "required"}},
        "input": {"city": unique("Oslo")},
    })  # fmt: skip
    assert job["params"]["tools"][0]["name"] == "get_weather" and job["params"]["toolChoice"] == "required"
    assert job["toolCalls"][0]["name"] == "get_weather" and job["finishReason"] == "tool_use"
    template = call_api(clean_queues, "GET", f"/templates/{job['templateId']}").body
    assert template["defaults"]["tools"][0]["name"] == "get_weather"


def test_an_image_reaches_the_model_and_is_purged_with_the_job(clean_queues: LocalRunner) -> None:
    made = call_api(clean_queues, "POST", "/templates", body={"name": unique("img"), "body": "unused"}).body
    job = _generate(clean_queues, {"templateId": made["id"], "messages": [{"role": "user", "content": "Describe it",
                    "attachments": [{"mediaType": "image/png", "data": PNG}]}]})  # fmt: skip
    assert job["status"] == "completed" and job["output"].startswith("[shown: image/png] Fake answer for: Describe it")
    assert job["messages"][0]["attachments"] == [{"mediaType": "image/png", "data": PNG}]
    assert call_api(clean_queues, "DELETE", f"/jobs/{job['id']}").status == 204
    assert call_api(clean_queues, "GET", f"/jobs/{job['id']}").body["messages"] is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "toolCallId": "x", "content": "b"}]},
         "messages[1].role"),
        ({"messages": [{"role": "user", "content": "a"},
                       {"role": "assistant", "toolCalls": [{"id": "c1", "name": "f"}]},
                       {"role": "tool", "toolCallId": "c2", "content": "b"}]}, "messages[2].toolCallId"),
        ({"tools": [WEATHER], "toolChoice": "function:nope"}, "toolChoice"),
        ({"toolChoice": "required"}, "toolChoice"),
        ({"tools": [{**WEATHER, "parameters": {"type": "nope"}}]}, "tools[0].parameters"),
        ({"tools": [WEATHER, WEATHER]}, "tools"),
        ({"messages": [{"role": "user", "content": "a", "attachments": [
            {"mediaType": "image/png", "url": "s3://someone-elses-bucket/a.png"}]}]}, "messages[0].attachments[0]"),
        ({"messages": [{"role": "user", "content": "a", "attachments": [{"mediaType": "image/png"}]}]},
         "messages[0].attachments[0]"),
        ({"messages": [{"role": "assistant", "content": "a",
                        "attachments": [{"mediaType": "image/png", "data": PNG}]}]}, "messages[0]"),
    ],
)  # fmt: skip
def test_bad_tools_and_turns_name_their_field(runner: LocalRunner, extra: dict[str, Any], field: str) -> None:
    made = call_api(runner, "POST", "/templates", body={"name": unique("bad"), "body": "Say {{ x }}"}).body
    answer = call_api(runner, "POST", "/generate", body={"templateId": made["id"], "input": {"x": "1"}, **extra})
    assert answer.status == 422, answer.body
    assert answer.body["error"]["details"]["fields"][0]["field"] == field
