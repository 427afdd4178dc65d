"""The OpenAI Batch API end to end: the pinned official `openai` SDK against `promptlab local`, the lines going
through the economy lane to stand-ins speaking Anthropic's and OpenAI's batch wire formats (and the fake's)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import openai
import psycopg
import pytest

from tests.support import ROOT, redis_prefix
from tests.support.bedrock_server import BedrockServer
from tests.support.local_stack import KEYS, request, running_stack
from tests.support.openai_stack import OpenAIStack
from tests.support.provider_server import ProviderServer

pytestmark = pytest.mark.e2e
MODELS = ["claude-haiku-4-5", "gpt-4.1-mini", "bedrock/anthropic.claude-3-haiku-20240307-v1:0", "fake/fake-1"]
BEDROCK_BUCKET = f"promptlab-e2e-openai-batches-{uuid.uuid4().hex[:8]}"


Stack = OpenAIStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    server, bedrock = ProviderServer().start(), BedrockServer().start()
    data = tmp_path_factory.mktemp("openai-batches")
    env = {
        "PROMPTLAB_BEDROCK_ENABLED": "true", "PROMPTLAB_BEDROCK_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock.url, "AWS_ENDPOINT_URL_BEDROCK": bedrock.url,
        "PROMPTLAB_BEDROCK_BATCH_BUCKET": BEDROCK_BUCKET,
        "PROMPTLAB_BEDROCK_BATCH_ROLE_ARN": "arn:aws:iam::123456789012:role/promptlab-bedrock-batch",
        "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url,
        "OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": server.url + "/v1",
        "PROMPTLAB_ECONOMY_MIN_JOBS": "1", "PROMPTLAB_ECONOMY_MAX_WAIT_SECONDS": "0",
        "PROMPTLAB_REDIS_PREFIX": redis_prefix("openai-batches"),
        # Small, so a file past it takes the upload path here without a many-megabyte test file
        "PROMPTLAB_OPENAI_FILE_MAX_BYTES": "400000",
    }  # fmt: skip
    try:
        with running_stack(data, env, args=("--schedule-speedup", "30")) as base:
            endpoint = json.loads((data / "local-stack.json").read_text())["AWS_ENDPOINT_URL"]
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local",
                              aws_secret_access_key="local")  # fmt: skip
            s3.create_bucket(Bucket=BEDROCK_BUCKET)
            bedrock.s3_endpoint = endpoint  # the stand-in reads and writes batch files in the stack's S3
            yield Stack(base, data, server, env)
    finally:
        server.stop()
        bedrock.stop()


def line(custom_id: str, model: str, text: str, **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 50, **extra}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def upload(client: openai.OpenAI, lines: list[dict[str, Any]] | bytes) -> str:
    content = lines if isinstance(lines, bytes) else "\n".join(json.dumps(x) for x in lines).encode() + b"\n"
    made = client.files.create(file=("input.jsonl", io.BytesIO(content)), purpose="batch")
    assert made.object == "file" and made.purpose == "batch" and made.bytes == len(content)
    return made.id


def wait_until_ended(client: openai.OpenAI, batch_id: str, seconds: float = 150) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in {"completed", "failed", "expired", "cancelled"}:
            return batch
        assert time.monotonic() < deadline, batch
        time.sleep(0.5)


def test_a_file_of_mixed_providers_runs_through_their_batch_apis_and_comes_back_line_for_line(stack: Stack) -> None:
    client = stack.client()
    tag = uuid.uuid4().hex[:8]
    # One request answered earlier through the chat door: its line is a cache hit, free
    cached = {"model": "fake/fake-1", "messages": [{"role": "user", "content": f"cached {tag}"}], "max_tokens": 50}
    client.chat.completions.create(**cached)  # type: ignore[call-overload]
    lines = [line(f"req-{n}", MODELS[n % 4], f"question {n} {tag}") for n in range(1_000)]
    lines[7] = {"custom_id": "req-7", "method": "POST", "url": "/v1/chat/completions", "body": cached}
    lines[11] = line("req-11", "claude-haiku-4-5", "batch-error-permanent")  # the provider refuses this request
    # A template by label with its variables, a tool, a JSON schema: what the chat door takes, a line takes
    status, _, template = request(
        stack.base, "POST", "/templates", {"name": f"reply-{tag}", "body": "Reply to {{ t }}."}
    )
    request(stack.base, "PUT", f"/templates/{template['id']}/labels/production", {"version": 1})
    lines[13]["body"] = {
        "model": f"{template['id']}@production",
        "messages": [],
        "promptlab": {"variables": {"t": tag}},
    }
    lines[17]["body"]["tools"] = [
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    ]
    lines[19]["body"]["response_format"] = {"type": "json_schema", "json_schema": {"name": "a", "schema": {
        "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}}  # fmt: skip
    file_id = upload(client, lines)
    # When the batch is created and run to its end
    created = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                    completion_window="24h", metadata={"team": "support"})  # fmt: skip
    assert created.status == "in_progress" and created.request_counts is not None
    assert created.request_counts.total == 1_000 and created.metadata == {"team": "support"}
    ended = wait_until_ended(client, created.id)
    # Then every line is answered once: 999 in the output file, the refused one in the error file
    assert ended.status == "completed" and ended.request_counts is not None
    assert (ended.request_counts.completed, ended.request_counts.failed) == (999, 1)
    assert ended.completed_at and ended.finalizing_at and ended.in_progress_at
    output = [json.loads(x) for x in client.files.content(ended.output_file_id or "").text.splitlines()]
    errors = [json.loads(x) for x in client.files.content(ended.error_file_id or "").text.splitlines()]
    assert [o["custom_id"] for o in output] == [f"req-{n}" for n in range(1_000) if n != 11]
    assert [e["custom_id"] for e in errors] == ["req-11"]
    assert errors[0]["response"]["status_code"] == 400 and errors[0]["response"]["body"]["error"]["message"]
    answers = {o["custom_id"]: o["response"] for o in output}
    assert all(r["status_code"] == 200 and r["body"]["object"] == "chat.completion" for r in answers.values())
    assert answers["req-0"]["body"]["model"].startswith("claude-haiku-4-5")
    assert answers["req-1"]["body"]["model"].startswith("gpt-4.1-mini")
    assert "claude-3-haiku" in answers["req-2"]["body"]["model"]  # 250 lines: past Bedrock's 100-record minimum
    templated = request(stack.base, "GET", f"/jobs/{answers['req-13']['request_id']}")[2]
    assert (
        templated["templateId"] == template["id"]
        and tag in answers["req-13"]["body"]["choices"][0]["message"]["content"]
    )
    assert json.loads(answers["req-19"]["body"]["choices"][0]["message"]["content"])["answer"]
    assert request(stack.base, "GET", f"/jobs/{answers['req-17']['request_id']}")[2]["params"]["tools"]
    # Each line is a job of its own (the request id), through the economy lane at batch prices
    for custom_id in ("req-0", "req-1", "req-2", "req-3"):  # Anthropic, OpenAI, Bedrock, the fake
        status, _, job = request(stack.base, "GET", f"/jobs/{answers[custom_id]['request_id']}")
        assert status == 200 and job["lane"] == "economy" and job["batchId"], job
    assert Decimal(request(stack.base, "GET", f"/jobs/{answers['req-0']['request_id']}")[2]["savedCostUSD"]) > 0
    status, _, hit = request(stack.base, "GET", f"/jobs/{answers['req-7']['request_id']}")
    assert hit["cacheHit"] is True and Decimal(hit["estimatedCostUSD"]) == 0
    # And usage grouped by batch is what the lines cost
    status, _, usage = request(stack.base, "GET", "/usage?groupBy=batch")
    group = next(g for g in usage["items"] if g["key"] == created.id)
    assert group["requests"] == 1_000 and group["completed"] == 999
    database = json.loads((stack.data / "local-stack.json").read_text())["DATABASE_URL"]
    with psycopg.connect(database) as conn:
        ids = [r["request_id"] for r in answers.values()] + [errors[0]["response"]["request_id"]]
        row = conn.execute("SELECT sum(estimated_cost_usd) FROM jobs WHERE id = ANY(%s)", (ids,)).fetchone()
    assert row is not None and Decimal(group["costUSD"]) == row[0] > 0
    # The files are listed, and a deleted one is gone
    assert file_id in {f.id for f in client.files.list()}
    assert client.files.delete(file_id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file_id)


def test_bad_lines_fail_the_batch_at_validation_naming_line_and_custom_id(stack: Stack) -> None:
    client = stack.client()
    bad = b"\n".join([
        json.dumps(line("a", "fake/fake-1", "fine")).encode(),
        b"{not json",
        json.dumps(line("a", "fake/fake-1", "same id")).encode(),
        json.dumps(line("c", "fake/fake-1", "x", logit_bias={"50256": -100})).encode(),
        json.dumps({**line("d", "fake/fake-1", "x"), "url": "/v1/embeddings"}).encode(),
    ])  # fmt: skip
    batch = client.batches.create(input_file_id=upload(client, bad), endpoint="/v1/chat/completions",
                                  completion_window="24h")  # fmt: skip
    assert batch.status == "failed" and batch.failed_at and batch.errors and batch.errors.data
    found = {(e.line, e.code) for e in batch.errors.data}
    expected = {(2, "invalid_json_line"), (3, "duplicate_custom_id"), (4, "unsupported_parameter"), (5, "invalid_url")}
    assert found == expected
    assert "custom_id 'c'" in (batch.errors.data[2].message or "") and batch.errors.data[2].param == "body.logit_bias"
    # Nothing ran
    assert batch.request_counts is not None and batch.request_counts.total == 0
    # An unknown file, endpoint or window: OpenAI's errors
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.BadRequestError) as wrong:
        client.batches.create(input_file_id="file-nope", endpoint="/v1/embeddings", completion_window="24h")
    assert wrong.value.param == "endpoint"


def test_a_batch_over_the_budget_starts_nothing_and_names_the_shortfall(stack: Stack) -> None:
    key = stack.new_key("--monthly-budget-usd", "0.01")
    client = stack.client(key)
    lines = [line(f"r{n}", "claude-haiku-4-5", "x" * 2_000, max_tokens=4_000) for n in range(50)]
    with pytest.raises(openai.RateLimitError) as refused:
        client.batches.create(input_file_id=upload(client, lines), endpoint="/v1/chat/completions",
                              completion_window="24h")  # fmt: skip
    assert refused.value.code == "insufficient_quota" and "short" in refused.value.message
    assert client.batches.list().data == []
    # A batch that fits is reserved whole, then settles line by line: the ledger ends at what the lines cost
    fits = [line(f"f{n}", "claude-haiku-4-5", f"short {n} {uuid.uuid4().hex}") for n in range(20)]
    batch = client.batches.create(input_file_id=upload(client, fits), endpoint="/v1/chat/completions",
                                  completion_window="24h")  # fmt: skip
    database = json.loads((stack.data / "local-stack.json").read_text())["DATABASE_URL"]
    with psycopg.connect(database) as conn:
        held = conn.execute("SELECT sum(reserved_usd) FROM key_budgets").fetchone()
        assert held is not None and held[0] > 0
    assert wait_until_ended(client, batch.id).status == "completed"
    with psycopg.connect(database) as conn:
        key_id = conn.execute("SELECT api_key_id FROM openai_batches WHERE id = %s", (batch.id,)).fetchone()
        assert key_id is not None
        ledger = conn.execute(
            "SELECT spent_usd, reserved_usd FROM key_budgets WHERE key_id = %s", (key_id[0],)
        ).fetchone()
        lines_cost = conn.execute(
            "SELECT sum(estimated_cost_usd) FROM jobs WHERE openai_batch_id = %s", (batch.id,)
        ).fetchone()
    assert ledger is not None and lines_cost is not None
    assert ledger[0] == lines_cost[0] > 0 and ledger[1] == 0


def test_cancel_midway_keeps_what_finished_and_releases_the_rest(stack: Stack) -> None:
    client = stack.client(stack.new_key("--monthly-budget-usd", "50"))
    lines = [line(f"r{n}", "claude-haiku-4-5", f"cancel me {n} {uuid.uuid4().hex}") for n in range(300)]
    batch = client.batches.create(input_file_id=upload(client, lines), endpoint="/v1/chat/completions",
                                  completion_window="24h")  # fmt: skip
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in {"cancelling", "cancelled"} and cancelling.cancelling_at
    ended = wait_until_ended(client, batch.id)
    assert ended.status == "cancelled" and ended.cancelled_at and ended.request_counts is not None
    done = ended.request_counts.completed
    assert done + ended.request_counts.failed == 300 and ended.error_file_id
    errors = [json.loads(x) for x in client.files.content(ended.error_file_id).text.splitlines()]
    assert {e["error"]["code"] for e in errors if e["error"]} == {"batch_cancelled"}
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)
    # The key's budget holds nothing more, and has spent exactly what the finished lines cost
    database = json.loads((stack.data / "local-stack.json").read_text())["DATABASE_URL"]
    with psycopg.connect(database) as conn:
        ledger = conn.execute(
            "SELECT b.spent_usd, b.reserved_usd, (SELECT coalesce(sum(estimated_cost_usd), 0) FROM jobs"
            " WHERE openai_batch_id = %s) FROM key_budgets b JOIN openai_batches o ON o.api_key_id = b.key_id"
            " WHERE o.id = %s",
            (batch.id, batch.id),
        ).fetchone()
    assert ledger is not None and ledger[1] == 0 and ledger[0] == ledger[2]


def test_another_tenant_sees_no_file_and_no_batch(stack: Stack) -> None:
    mine = stack.client()
    file_id = upload(mine, [line("only", "fake/fake-1", "mine")])
    batch = mine.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    other = stack.client(stack.new_key())
    for call in (lambda: other.files.retrieve(file_id), lambda: other.files.content(file_id),
                 lambda: other.files.delete(file_id), lambda: other.batches.retrieve(batch.id),
                 lambda: other.batches.cancel(batch.id),
                 lambda: other.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                              completion_window="24h")):  # fmt: skip
        with pytest.raises(openai.NotFoundError):
            call()
    assert batch.id not in {b.id for b in other.batches.list()} and file_id not in {f.id for f in other.files.list()}


def test_the_guides_example_runs_as_pasted(stack: Stack) -> None:
    section = (ROOT / "docs" / "guides" / "openai-batches.md").read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    env = {**os.environ, "PROMPTLAB_URL": stack.base, "PROMPTLAB_API_KEY": KEYS[stack.base]}
    ran = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    status, *answers = ran.stdout.splitlines()
    assert status.startswith("completed") and "completed=3" in status
    assert [a.split()[0] for a in answers] == ["ticket-0", "ticket-1", "ticket-2"]
    assert all(a.split()[1].startswith("job_") and int(a.split()[2]) > 0 for a in answers)


def test_a_file_too_large_for_a_request_body_goes_through_a_presigned_upload(stack: Stack) -> None:
    client = stack.client()
    lines = [line(f"big-{n}", "fake/fake-1", f"{n} {'long ticket text ' * 20}") for n in range(1_200)]
    content = "\n".join(json.dumps(x) for x in lines).encode()
    assert len(content) > 400_000
    # The body path refuses it, naming the limit
    with pytest.raises(openai.APIStatusError) as refused:
        client.files.create(file=("big.jsonl", io.BytesIO(content)), purpose="batch")
    assert refused.value.status_code == 413
    # Through an upload: PUT to the presigned URL, then name the upload
    upload: Any = client.post("/files/uploads", body={}, cast_to=object)
    put = urllib.request.Request(upload["url"], data=content, method="PUT", headers=upload["headers"])
    with urllib.request.urlopen(put, timeout=30) as answer:
        assert answer.status == 200
    made = client.post("/files", body={"upload_id": upload["id"], "filename": "big.jsonl", "purpose": "batch"},
                       cast_to=openai.types.FileObject)  # fmt: skip
    assert made.bytes == len(content) and made.purpose == "batch"
    # The same upload cannot be used twice, and an unknown one is named
    with pytest.raises(openai.BadRequestError) as again:
        client.post("/files", body={"upload_id": upload["id"], "filename": "x", "purpose": "batch"}, cast_to=object)
    assert again.value.param == "upload_id"
    # Its batch runs, and an output file past the body limit downloads through a redirect the SDK follows
    batch = client.batches.create(input_file_id=made.id, endpoint="/v1/chat/completions", completion_window="24h")
    ended = wait_until_ended(client, batch.id)
    assert ended.status == "completed" and ended.output_file_id
    assert client.files.retrieve(ended.output_file_id).bytes > 400_000
    assert client.files.content(made.id).content == content
    output = client.files.content(ended.output_file_id).text.splitlines()
    assert [json.loads(o)["custom_id"] for o in output] == [f"big-{n}" for n in range(1_200)]


def test_a_keys_rate_limit_counts_every_line(stack: Stack) -> None:
    client = stack.client(stack.new_key("--rpm", "10"))
    file_id = upload(client, [line(f"r{n}", "fake/fake-1", f"rpm {n}") for n in range(20)])
    with pytest.raises(openai.RateLimitError) as refused:
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert refused.value.code == "rate_limit_exceeded" and "20 requests" in refused.value.message
    assert refused.value.response.headers["retry-after"]
    assert client.batches.list().data == []  # nothing was stored
