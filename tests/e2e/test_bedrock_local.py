"""Bedrock end to end through `promptlab local` (a subprocess, as a user starts it) and a Bedrock stand-in."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.bedrock_server import MODELS, BedrockServer
from tests.support.local_stack import request, running_stack

pytestmark = pytest.mark.e2e

HAIKU_3 = "anthropic.claude-3-haiku-20240307-v1:0"
BUCKET = f"promptlab-e2e-batches-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockServer]:
    server = BedrockServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, bedrock: BedrockServer) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("bedrock-stack")
    env = {
        "PROMPTLAB_BEDROCK_ENABLED": "true",
        "PROMPTLAB_BEDROCK_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock.url,
        "AWS_ENDPOINT_URL_BEDROCK": bedrock.url,
        "PROMPTLAB_BEDROCK_BATCH_BUCKET": BUCKET,
        "PROMPTLAB_BEDROCK_BATCH_ROLE_ARN": "arn:aws:iam::123456789012:role/promptlab-bedrock-batch",
    }
    with running_stack(data, env) as base:
        endpoint = json.loads((data / "local-stack.json").read_text())["AWS_ENDPOINT_URL"]
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        s3.create_bucket(Bucket=BUCKET)
        bedrock.s3_endpoint = endpoint  # the stand-in reads and writes batch files in the stack's S3
        yield base, data


def wait_for(base: str, job_id: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status, _, job = request(base, "GET", f"/jobs/{job_id}?wait=5")
        assert status == 200, job
        if job["status"] not in {"queued", "processing"} or time.monotonic() > deadline:
            return dict(job)


def test_the_runner_lists_the_bedrock_models_it_reaches(stack: tuple[str, Path]) -> None:
    log = (stack[1] / "local.log").read_text()
    assert f"Bedrock (us-east-1): {len(MODELS)} models reachable: {', '.join(sorted(MODELS))}" in log
    assert "Providers: " in log and "bedrock" in log.split("Providers: ", 1)[1].splitlines()[0]


def test_generate_on_bedrock_completes_with_exact_cost(stack: tuple[str, Path]) -> None:
    base = stack[0]
    status, _, template = request(
        base, "POST", "/templates", {"name": f"b-{uuid.uuid4().hex[:6]}", "body": "Explain {{ t }}"}
    )
    assert status == 201
    body = {"templateId": template["id"], "input": "TypeScript", "provider": "bedrock", "model": HAIKU_3}
    status, _, job = request(base, "POST", "/generate", body)
    assert status == 202, job
    done = wait_for(base, job["id"], 30)
    assert done["status"] == "completed" and done["estimatedCostUSD"] == "0.00098775", done


def test_a_throttling_storm_slows_the_route_without_dead_letters(
    stack: tuple[str, Path], bedrock: BedrockServer
) -> None:
    base = stack[0]
    model = "anthropic.claude-haiku-4-5-20251001-v1:0"
    bedrock.errors[model] = ["ThrottlingException"] * 6
    status, _, template = request(
        base, "POST", "/templates", {"name": f"s-{uuid.uuid4().hex[:6]}", "body": "Say {{ t }}"}
    )
    items = [{"templateId": template["id"], "input": f"n{i}", "provider": "bedrock", "model": model} for i in range(12)]
    status, _, batch = request(base, "POST", "/generate/batch", {"items": items})
    assert status == 202, batch
    jobs = [wait_for(base, item["jobId"], 90) for item in batch["items"]]
    assert [j["status"] for j in jobs] == ["completed"] * 12
    assert bedrock.errors[model] == [] and sum(j["attempts"] for j in jobs) == 18  # each throttle: a call, no attempt
    assert all(j["maxAttempts"] - j["attempts"] == 2 for j in jobs)  # every job keeps its whole retry budget


def test_an_economy_job_completes_through_batch_inference_at_batch_prices(stack: tuple[str, Path]) -> None:
    base = stack[0]
    status, _, template = request(base, "POST", "/templates", {"name": f"e-{uuid.uuid4().hex[:6]}", "body": "{{ t }}"})
    items = [
        {
            "templateId": template["id"],
            "input": f"row {i}",
            "provider": "bedrock",
            "model": HAIKU_3,
            "priority": "economy",
        }
        for i in range(100)  # Bedrock's minimum records per batch inference job
    ]
    status, _, batch = request(base, "POST", "/generate/batch", {"items": items})
    assert status == 202, batch
    done = wait_for(base, batch["items"][0]["jobId"], 90)
    assert done["status"] == "completed" and done["lane"] == "economy" and done["batchId"], done
    assert Decimal(done["estimatedCostUSD"]) == (36 * Decimal("0.125") + 783 * Decimal("0.625")) / 1_000_000
    status, _, provider_batch = request(base, "GET", f"/batches/{done['batchId']}")
    assert ":model-invocation-job/" in provider_batch["providerBatchId"]


def test_the_openai_door_speaks_converse_with_tools_and_images(stack: tuple[str, Path], bedrock: BedrockServer) -> None:
    import openai

    from tests.support.local_stack import KEYS

    base, _ = stack
    client = openai.OpenAI(base_url=base + "/v1", api_key=KEYS[base], max_retries=0)
    model = f"bedrock/{HAIKU_3}"
    weather: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}  # fmt: skip
    messages: list[Any] = [{"role": "user", "content": f"Weather in Paris? {uuid.uuid4()}"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=[weather])
    call: Any = (first.choices[0].message.tool_calls or [])[0]
    assert first.choices[0].finish_reason == "tool_calls" and json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]  # fmt: skip
    second = client.chat.completions.create(model=model, messages=messages, tools=[weather])
    assert second.choices[0].message.content == "Bedrock says: sunny"
    sent = bedrock.converse_requests[-1]
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    assert sent["messages"][1]["content"][0]["toolUse"]["toolUseId"] == call.id
    assert sent["messages"][2]["content"][0]["toolResult"]["content"] == [{"text": "sunny"}]
    # Images: inline bytes, or an object of the stack's bucket by its s3:// key; Converse takes no https URL
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    parts: Any = [{"type": "text", "text": f"What is it? {uuid.uuid4()}"},
                  {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                  {"type": "image_url", "image_url": {"url": f"s3://{BUCKET}/pictures/cat.jpg"}}]  # fmt: skip
    seen = client.chat.completions.create(model=model, messages=[{"role": "user", "content": parts}])
    assert (seen.choices[0].message.content or "").startswith("[saw 2]")
    blocks = bedrock.converse_requests[-1]["messages"][0]["content"]
    assert blocks[0]["image"]["format"] == "png" and blocks[1]["image"]["source"] == {
        "s3Location": {"uri": f"s3://{BUCKET}/pictures/cat.jpg"}}  # fmt: skip
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])  # fmt: skip
    assert refused.value.body["param"] == "messages[0].attachments[0]"  # type: ignore[index]
