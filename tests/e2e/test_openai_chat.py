"""The OpenAI door end to end: the pinned official `openai` SDK against `promptlab local` (a subprocess, as a
user starts it), with stand-ins speaking Anthropic's and OpenAI's real wire formats behind it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support import ROOT, redis_prefix
from tests.support.local_stack import KEYS, request, running_stack
from tests.support.openai_stack import OpenAIStack
from tests.support.provider_server import ProviderServer

pytestmark = pytest.mark.e2e


Stack = OpenAIStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    server = ProviderServer().start()
    data = tmp_path_factory.mktemp("openai-door")
    env = {
        "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url,
        "OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": server.url + "/v1",
        "PROMPTLAB_CHAT_WAIT_SECONDS": "4", "PROMPTLAB_REDIS_PREFIX": redis_prefix("openai-door"),
    }  # fmt: skip
    try:
        with running_stack(data, env) as base:
            yield Stack(base, data, server, env)
    finally:
        server.stop()


def test_a_chat_is_a_job_answered_in_openais_shape(stack: Stack) -> None:
    # Given the official SDK pointed at the stack with a PromptLab key
    raw = stack.client().chat.completions.with_raw_response.create(
        model="fake/fake-1",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is {{ SQS }}?"}],
        max_tokens=60, temperature=0.2, user="end-user-7", metadata={"ticket": "T-1"},
    )  # fmt: skip
    answer = raw.parse()
    job_id = raw.headers["x-promptlab-job-id"]
    # Then the answer is a chat.completion of that job, with usage
    assert answer.object == "chat.completion" and answer.id == f"chatcmpl-{job_id}" and answer.model == "fake-1"
    assert answer.choices[0].message.role == "assistant" and answer.choices[0].finish_reason in {"stop", "length"}
    assert (answer.choices[0].message.content or "").startswith("Fake answer for: What is {{ SQS }}")  # sent as written
    assert (
        answer.usage is not None
        and answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    )
    # And the job is an ordinary one: its turns, parameters, metadata (the SDK's `user` kept), cost
    status, _, job = request(stack.base, "GET", f"/jobs/{job_id}")
    assert status == 200 and job["status"] == "completed" and job["provider"] == "fake"
    assert [m["role"] for m in job["messages"]] == ["system", "user"]
    assert job["metadata"] == {"ticket": "T-1", "user": "end-user-7"} and job["params"]["temperature"] == "0.2"
    assert job["estimatedCostUSD"] is not None


def test_the_async_client_and_a_stream(stack: Stack) -> None:
    async def run() -> tuple[Any, list[Any]]:
        client = openai.AsyncOpenAI(base_url=stack.base + "/v1", api_key=KEYS[stack.base], max_retries=0)
        plain = await client.chat.completions.create(
            model="fake/fake-1", messages=[{"role": "user", "content": "async"}]
        )
        stream = await client.chat.completions.create(
            model="fake/fake-1", messages=[{"role": "user", "content": "stream it"}], stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        return plain, [chunk async for chunk in stream]

    plain, chunks = asyncio.run(run())
    assert (plain.choices[0].message.content or "").startswith("Fake answer for: async")
    # The stream: a role chunk, the text, the finish reason, the usage chunk; the text is the whole answer
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant" and text.startswith("Fake answer for: stream it")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in {"stop", "length"}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)


def test_models_route_to_each_providers_real_wire_format(stack: Stack) -> None:
    client = stack.client()
    before = len(stack.server.requests)
    claude = client.chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "developer", "content": "You are terse."}, {"role": "user", "content": "hello claude"},
                  {"role": "assistant", "content": "Hi."},
                  {"role": "user", "content": [{"type": "text", "text": "again"}]}],
        stop="END",
    )  # fmt: skip
    gpt = client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "give json"}], max_completion_tokens=100,
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": {
            "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}},
    )  # fmt: skip
    sent = stack.server.requests[before:]
    anthropic_call = next(r for r in sent if r["path"].endswith("/v1/messages"))
    openai_call = next(r for r in sent if r["path"].endswith("/chat/completions"))
    # Anthropic got its Messages format: the system block, alternating turns, stop_sequences
    assert anthropic_call["body"]["system"][0]["text"] == "You are terse."
    assert [m["role"] for m in anthropic_call["body"]["messages"]] == ["user", "assistant", "user"]
    assert anthropic_call["body"]["stop_sequences"] == ["END"]
    assert claude.choices[0].message.content == "Claude says: again" and claude.choices[0].finish_reason == "stop"
    assert claude.model == "claude-haiku-4-5" and claude.usage is not None and claude.usage.completion_tokens == 783
    # OpenAI got native structured output and the answer satisfies the schema
    assert openai_call["body"]["response_format"]["type"] == "json_schema"
    assert isinstance(json.loads(gpt.choices[0].message.content or "")["n"], int)
    assert gpt.usage is not None and gpt.usage.prompt_tokens_details is not None
    # (the stand-in answers broken JSON first: the re-ask with the error is the job's too, and billed)
    assert gpt.usage.prompt_tokens_details.cached_tokens == 2 * 1000 and gpt.usage.completion_tokens == 2 * 783
    # And /v1/models lists what the stack can reach, by the names chat takes
    names = {m.id for m in client.models.list().data}
    assert {"fake/fake-1", "claude-haiku-4-5", "gpt-4.1-mini"} <= names


def test_a_template_by_label_or_name_with_its_variables(stack: Stack) -> None:
    name = f"summary-{uuid.uuid4().hex[:6]}"
    status, _, template = request(stack.base, "POST", "/templates", {
        "name": name, "system": "You summarise for {{ audience }}.", "body": "Summarise: {{ text }}",
        "defaults": {"provider": "fake"}})  # fmt: skip
    assert status == 201
    assert request(stack.base, "PUT", f"/templates/{template['id']}/labels/production", {"version": 1})[0] == 200
    client = stack.client()
    by_label = client.chat.completions.with_raw_response.create(
        model=f"{template['id']}@production", messages=[],
        extra_body={"promptlab": {"variables": {"audience": "engineers", "text": "queues decouple work"}}},
    )  # fmt: skip
    assert (by_label.parse().choices[0].message.content or "").startswith(
        "Fake answer for: Summarise: queues decouple work"
    )
    job = request(stack.base, "GET", f"/jobs/{by_label.headers['x-promptlab-job-id']}")[2]
    assert job["templateId"] == template["id"] and job["input"] == {
        "audience": "engineers",
        "text": "queues decouple work",
    }
    # By name, with a conversation instead of the body: the template's system prompt still applies
    by_name = client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "just this"}],
        extra_body={"promptlab": {"variables": {"audience": "lawyers"}}},
    )  # fmt: skip
    assert (by_name.choices[0].message.content or "").startswith("Fake answer for: just this")
    # A missing variable names its parameter
    with pytest.raises(openai.BadRequestError) as missing:
        client.chat.completions.create(model=name, messages=[], extra_body={"promptlab": {"variables": {"text": "x"}}})
    assert missing.value.body["param"].startswith("promptlab.variables")  # type: ignore[index]


def test_identical_chats_are_answered_from_the_cache_and_idempotency_keys_replay(stack: Stack) -> None:
    client = stack.client()
    body: dict[str, Any] = {"model": "fake/fake-1", "messages": [{"role": "user", "content": f"cache {uuid.uuid4()}"}]}
    first = client.chat.completions.with_raw_response.create(**body)
    second = client.chat.completions.with_raw_response.create(**body)
    skipped = client.chat.completions.with_raw_response.create(**body, extra_headers={"Cache-Control": "no-cache"})
    assert first.headers["x-promptlab-cache"] == "miss" and second.headers["x-promptlab-cache"] == "hit"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert skipped.headers["x-promptlab-cache"] == "miss"
    key = {"Idempotency-Key": f"chat-{uuid.uuid4()}"}
    fresh = {**body, "messages": [{"role": "user", "content": f"once {uuid.uuid4()}"}]}
    one = client.chat.completions.with_raw_response.create(**fresh, extra_headers={**key, "Cache-Control": "no-cache"})
    two = client.chat.completions.with_raw_response.create(**fresh, extra_headers={**key, "Cache-Control": "no-cache"})
    assert one.headers["x-promptlab-job-id"] == two.headers["x-promptlab-job-id"]


def test_errors_come_in_openais_shape_and_statuses(stack: Stack) -> None:
    client = stack.client()
    hello: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError) as wrong_key:
        stack.client("pl_not_a_key").chat.completions.create(model="fake/fake-1", messages=hello)
    assert wrong_key.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-model", messages=hello)
    assert unknown.value.body == {"message": unknown.value.body["message"], "type": "invalid_request_error",  # type: ignore[index]
                                  "param": "model", "code": "model_not_found"}  # fmt: skip
    refusals: list[tuple[dict[str, Any], str]] = [({"frequency_penalty": 0.5}, "frequency_penalty"), ({"n": 2}, "n"),
                       ({"max_tokens": 0}, "max_tokens"),
                       ({"logit_bias": {"50256": -100}}, "logit_bias"),
                       ({"temperature": 5}, "temperature")]  # fmt: skip
    for bad, param in refusals:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="fake/fake-1", messages=hello, **bad)
        assert refused.value.body["param"] == param, bad  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as audio:
        client.chat.completions.create(model="fake/fake-1", messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}])  # fmt: skip
    assert audio.value.body["param"] == "messages[0].content[0]"  # type: ignore[index]
    # A provider refusing the request fails the job at once: its 400 comes back as such, with the job's id
    with pytest.raises(openai.BadRequestError) as provider_400:
        client.chat.completions.create(model="anthropic/status-400", messages=hello)
    assert provider_400.value.response.headers["x-promptlab-job-id"].startswith("job_")


def test_a_rate_limit_and_a_spent_budget_are_429s(stack: Stack) -> None:
    limited = stack.client(stack.new_key("--rpm", "1"))
    hello: Any = [{"role": "user", "content": f"limited {uuid.uuid4()}"}]
    limited.chat.completions.create(model="fake/fake-1", messages=hello)
    with pytest.raises(openai.RateLimitError) as throttled:
        limited.chat.completions.create(model="fake/fake-1", messages=hello)
    assert throttled.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    assert int(throttled.value.response.headers["retry-after"]) >= 1
    broke = stack.client(stack.new_key("--monthly-budget-usd", "0.000001"))
    with pytest.raises(openai.RateLimitError) as spent:
        broke.chat.completions.create(model="claude-haiku-4-5", messages=hello)
    assert spent.value.body["code"] == "insufficient_quota"  # type: ignore[index]


def test_a_chat_past_the_wait_keeps_its_job_and_the_same_request_picks_it_up(stack: Stack) -> None:
    # Given a provider slower than the stack's chat wait (4 s here)
    body: dict[str, Any] = {
        "model": "anthropic/sleep-6000",
        "messages": [{"role": "user", "content": f"slow {uuid.uuid4()}"}],
    }
    with pytest.raises(openai.APIStatusError) as pending:
        stack.client().chat.completions.create(**body)
    # Then a 504 names the job, which goes on; the same request again waits for that same job
    assert pending.value.status_code == 504 and pending.value.body["code"] == "job_pending"  # type: ignore[index]
    job_id = pending.value.response.headers["x-promptlab-job-id"]
    again = stack.client().chat.completions.with_raw_response.create(**body)
    assert again.headers["x-promptlab-job-id"] == job_id and again.parse().choices[0].message.content
    # And no prompt text reached the stack's log
    assert "slow " not in (stack.data / "local.log").read_text()


def test_the_readmes_example_runs_as_pasted(stack: Stack) -> None:
    import re

    section = (ROOT / "docs" / "guides" / "openai-door.md").read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    env = {**os.environ, "PROMPTLAB_URL": stack.base, "PROMPTLAB_API_KEY": KEYS[stack.base]}
    ran = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    ids, text = ran.stdout.splitlines()[:2]
    assert (
        ids.startswith("job_") and ids.split()[1] in {"hit", "miss"} and text.startswith("Fake answer for: What is SQS")
    )


WEATHER: Any = {
    "type": "function",
    "function": {"name": "get_weather", "description": "The weather in a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
}  # fmt: skip
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.mark.parametrize("model", ["fake/fake-1", "claude-haiku-4-5", "gpt-4.1-mini"])
def test_a_tool_round_trip(stack: Stack, model: str) -> None:
    client = stack.client()
    messages: list[Any] = [{"role": "user", "content": f"What is the weather in Paris? {uuid.uuid4()}"}]
    # The model asks for the tool: the answer carries the call, PromptLab never runs it
    first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    call = (first.choices[0].message.tool_calls or [])[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.type == "function"
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments)["city"], str)
    # The caller runs it and sends the result back as a `tool` message; the model answers
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]  # fmt: skip
    second = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop" and not second.choices[0].message.tool_calls
    assert "18 degrees and sunny" in (second.choices[0].message.content or "") or model.startswith("fake")
    if model.startswith("claude"):  # Anthropic got its own shapes: tool_use, then tool_result in a user turn
        sent = next(r["body"] for r in reversed(stack.server.requests) if r["path"].endswith("/v1/messages"))
        assert sent["tools"][0]["input_schema"]["required"] == ["city"]
        assert sent["messages"][1]["content"][-1]["type"] == "tool_use"
        assert sent["messages"][2] == {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "18 degrees and sunny"}]}  # fmt: skip
    if model.startswith("gpt"):
        sent = next(r["body"] for r in reversed(stack.server.requests) if r["path"].endswith("/chat/completions"))
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}
        assert sent["messages"][-2]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_a_tool_choice_and_a_stream_of_tool_calls(stack: Stack) -> None:
    client = stack.client()
    chunks = list(client.chat.completions.create(
        model="fake/fake-1", messages=[{"role": "user", "content": f"use it {uuid.uuid4()}"}], tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True,
    ))  # fmt: skip
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls and calls[0].function is not None and calls[0].function.name == "get_weather"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    with pytest.raises(openai.BadRequestError) as unknown:
        client.chat.completions.create(
            model="fake/fake-1", messages=[{"role": "user", "content": "x"}], tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )  # fmt: skip
    assert unknown.value.body["param"] == "tool_choice"  # type: ignore[index]


@pytest.mark.parametrize("model", ["fake/fake-1", "claude-haiku-4-5", "gpt-4.1-mini"])
def test_an_image_part_reaches_the_provider(stack: Stack, model: str) -> None:
    content: Any = [{"type": "text", "text": f"What is in this picture? {uuid.uuid4()}"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]  # fmt: skip
    answer = stack.client().chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    text = answer.choices[0].message.content or ""
    assert "[saw 1]" in text or "[shown: image/png]" in text
    if model.startswith("claude"):
        sent = next(r["body"] for r in reversed(stack.server.requests) if r["path"].endswith("/v1/messages"))
        assert sent["messages"][0]["content"][0] == {
            "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}  # fmt: skip


def test_documents_and_image_urls_go_where_the_provider_takes_them(stack: Stack) -> None:
    client = stack.client()
    pdf: Any = [{"type": "text", "text": f"Summarise {uuid.uuid4()}"},
                {"type": "file", "file": {"filename": "a.pdf",
                                          "file_data": f"data:application/pdf;base64,{PNG}"}}]  # fmt: skip
    claude = client.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": pdf}])
    assert "[saw 1]" in (claude.choices[0].message.content or "")
    by_url: Any = [{"type": "text", "text": "Read it"},
                   {"type": "image_url", "image_url": {"url": "https://example.com/report.pdf"}}]  # fmt: skip
    with pytest.raises(openai.BadRequestError) as refused:  # OpenAI takes no PDF by URL
        client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": by_url}])
    assert refused.value.body["param"] == "messages[0].attachments[0]"  # type: ignore[index]


def test_provider_faults_and_hostile_bodies_never_answer_500(stack: Stack) -> None:
    client = stack.client()
    # A 429 with retry-after from the provider: the job waits it out and the chat still answers
    before = len(stack.server.requests)
    calm = client.chat.completions.create(
        model="anthropic/throttle-once", messages=[{"role": "user", "content": f"busy {uuid.uuid4()}"}]
    )
    assert calm.choices[0].message.content and len(stack.server.requests) - before == 2
    # An overload storm (529 on every call): the job keeps retrying on the queue; the chat says so with its id
    with pytest.raises(openai.APIStatusError) as storm:
        client.chat.completions.create(model="anthropic/status-529", messages=[{"role": "user", "content": "x"}])
    assert storm.value.status_code in {502, 504} and storm.value.response.headers["x-promptlab-job-id"]
    body: Any = storm.value.body
    assert set(body) == {"message", "type", "param", "code"}
    # A body over the gateway's limit: 413 from the gateway itself (API Gateway's own answer in AWS), not a 500
    huge: Any = [{"role": "user", "content": "x" * 1_100_000}]
    with pytest.raises(openai.APIStatusError) as too_big:
        client.chat.completions.create(model="fake/fake-1", messages=huge)
    assert too_big.value.status_code == 413 and "larger than" in too_big.value.message
