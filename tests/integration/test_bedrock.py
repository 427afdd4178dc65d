"""Amazon Bedrock through boto3 against a stand-in speaking Bedrock's REST-JSON, and moto's S3."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest

from promptlab.infra import provider_throttle
from promptlab.jobs import economy
from promptlab.local.runner import LocalRunner
from promptlab.providers.base import GenerationCall, Message, ProviderError
from promptlab.providers.bedrock_provider import BedrockProvider, reachable_models
from promptlab.providers.registry import get_provider
from tests.integration.test_throttling import run_workers_until_done
from tests.support import SetEnv, call_api, job_through_worker, rows, unique
from tests.support.bedrock_server import MODELS, BedrockServer

HAIKU_3 = "anthropic.claude-3-haiku-20240307-v1:0"
HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
BUCKET = f"promptlab-bedrock-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockServer]:
    server = BedrockServer().start()
    yield server
    server.stop()


@pytest.fixture
def use_bedrock(runner: LocalRunner, bedrock: BedrockServer, set_env: SetEnv) -> BedrockServer:
    """Bedrock on, its runtime and control plane at the stand-in, its batch files in moto's S3."""
    set_env(
        PROMPTLAB_BEDROCK_ENABLED="true",
        PROMPTLAB_BEDROCK_REGION="us-east-1",
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME=bedrock.url,
        AWS_ENDPOINT_URL_BEDROCK=bedrock.url,
        PROMPTLAB_BEDROCK_BATCH_BUCKET=BUCKET,
        PROMPTLAB_BEDROCK_BATCH_ROLE_ARN="arn:aws:iam::123456789012:role/promptlab-bedrock-batch",
        PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]",
    )
    s3 = boto3.client("s3", endpoint_url=runner.sqs_endpoint, region_name="us-east-1")
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)
    bedrock.errors.clear()
    bedrock.throttle_rate = 0.0
    return bedrock


def call(model: str = HAIKU_3, *, cache_system: bool = False, **fields: Any) -> GenerationCall:
    return GenerationCall(
        model=model, system="You are terse.", messages=[Message(role="user", content="Explain TypeScript")],
        max_tokens=1000, temperature=Decimal("0.2"), timeout_seconds=5, cache_system=cache_system, **fields,
    )  # fmt: skip


def provider() -> BedrockProvider:
    made = get_provider("bedrock")
    assert isinstance(made, BedrockProvider)
    return made


def test_converse_sends_a_signed_request_and_reads_the_answer(use_bedrock: BedrockServer) -> None:
    before = len(use_bedrock.requests)
    result = provider().generate(call(top_p=Decimal("0.9"), stop=("END",)))
    assert result.text == "Bedrock says: Explain TypeScript" and result.finish_reason == "end_turn"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (36, 783) and result.request_id
    [sent] = use_bedrock.requests[before:]
    assert sent["path"] == f"/model/{HAIKU_3}/converse"
    assert sent["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert sent["body"]["system"] == [{"text": "You are terse."}]
    assert sent["body"]["inferenceConfig"] == {
        "maxTokens": 1000,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    assert sent["body"]["messages"] == [{"role": "user", "content": [{"text": "Explain TypeScript"}]}]
    # An unsigned request is refused, as Bedrock refuses it
    unsigned = urllib.request.Request(f"{use_bedrock.url}/model/{HAIKU_3}/converse", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=5)
    assert refused.value.code == 403 and "UnrecognizedClientException" in refused.value.headers["x-amzn-ErrorType"]


def test_a_cache_point_follows_the_system_prompt_and_cache_tokens_are_read(use_bedrock: BedrockServer) -> None:
    result = provider().generate(call(HAIKU_45, cache_system=True))
    assert use_bedrock.requests[-1]["body"]["system"] == [
        {"text": "You are terse."},
        {"cachePoint": {"type": "default"}},
    ]
    assert result.usage.cache_write_tokens == 1000


ERRORS = [
    ("ThrottlingException", "rate_limited", True, 429),
    ("ServiceQuotaExceededException", "rate_limited", True, 429),
    ("ModelNotReadyException", "model_not_ready", True, 429),
    ("ServiceUnavailableException", "provider_unavailable", True, 503),
    ("InternalServerException", "provider_unavailable", True, 500),
    ("ModelTimeoutException", "timeout", True, 408),
    ("ValidationException", "invalid_request", False, 400),
    ("AccessDeniedException", "permission_denied", False, 403),
    ("ResourceNotFoundException", "model_not_found", False, 404),
    ("ModelErrorException", "model_error", False, 424),
]


@pytest.mark.parametrize(("name", "code", "retryable", "status"), ERRORS)
def test_every_bedrock_error_is_classified(
    use_bedrock: BedrockServer, name: str, code: str, retryable: bool, status: int
) -> None:
    use_bedrock.errors[HAIKU_3] = [name]
    before = len(use_bedrock.requests)
    with pytest.raises(ProviderError) as caught:
        provider().generate(call())
    assert (caught.value.code, caught.value.retryable, caught.value.status) == (code, retryable, status)
    assert len(use_bedrock.requests) == before + 1  # boto3 does not retry: the queue does


def test_access_and_missing_model_errors_say_what_to_do(use_bedrock: BedrockServer, set_env: SetEnv) -> None:
    set_env(PROMPTLAB_BEDROCK_MODEL_ARNS=f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU_3}")
    use_bedrock.errors[HAIKU_3] = ["AccessDeniedException"]
    with pytest.raises(ProviderError) as denied:
        provider().generate(call())
    assert f"access to '{HAIKU_3}' in us-east-1 was denied" in denied.value.message
    assert "Model access" in denied.value.message and "bedrock:InvokeModel" in denied.value.message
    with pytest.raises(ProviderError) as missing:
        provider().generate(call("missing-model"))
    assert "model 'missing-model' was not found in us-east-1" in missing.value.message
    assert HAIKU_3 in missing.value.message  # the configured models are named


def test_a_guardrail_stop_is_permanent_and_a_cut_answer_is_flagged(use_bedrock: BedrockServer) -> None:
    with pytest.raises(ProviderError) as refused:
        provider().generate(call("guarded-model"))
    assert refused.value.code == "content_refused" and not refused.value.retryable
    assert provider().generate(call("truncated-model")).truncated


def test_a_job_completes_on_bedrock_with_exact_cost_by_model_id_or_inference_profile(
    clean_queues: LocalRunner, use_bedrock: BedrockServer
) -> None:
    for model in (HAIKU_3, f"us.{HAIKU_3}"):
        job = job_through_worker(
            clean_queues,
            {"template": {"body": "Explain {{ x }}"}, "input": "TypeScript", "provider": "bedrock", "model": model},
        )
        assert job["status"] == "completed" and (job["inputTokens"], job["outputTokens"]) == (36, 783), job
        assert job["estimatedCostUSD"] == "0.00098775"  # $0.25 / $1.25 per million (the figure)
        assert job["provider"] == "bedrock" and job["model"] == model
    cached = job_through_worker(
        clean_queues,
        {
            "template": {"body": "Explain {{ x }}", "system": "Long shared rules", "cacheSystemPrompt": True},
            "input": "TypeScript", "provider": "bedrock", "model": HAIKU_45,
        },
    )  # fmt: skip
    assert cached["cacheWriteTokens"] == 1000  # priced like Anthropic's cache writes: $1.25 per million
    assert Decimal(cached["estimatedCostUSD"]) == Decimal("0.003951") + Decimal("0.00125")


def test_json_mode_on_bedrock_is_validated_like_the_others(
    clean_queues: LocalRunner, use_bedrock: BedrockServer
) -> None:
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}
    job = job_through_worker(
        clean_queues,
        {
            "template": {"body": "Explain {{ x }}"}, "input": "TypeScript", "provider": "bedrock", "model": HAIKU_3,
            "responseFormat": {"type": "json_schema", "schema": schema},
        },
    )  # fmt: skip
    assert job["status"] == "completed" and json.loads(job["output"]) == {"answer": "Explain TypeScript"}
    assert "JSON" in use_bedrock.requests[-1]["body"]["system"][0]["text"]


def test_a_throttling_storm_slows_the_route_and_dead_letters_nothing(
    clean_queues: LocalRunner, use_bedrock: BedrockServer, set_env: SetEnv
) -> None:
    # Given Bedrock throttling the next 8 calls of the model (it sends no rate-limit headers, no retry-after),
    # and the retry backoff between attempts (1, 3, 10 s)
    set_env(PROMPTLAB_RETRY_BACKOFF_SECONDS="[1, 3, 10]")
    use_bedrock.errors[HAIKU_45] = ["ThrottlingException"] * 8
    made = call_api(clean_queues, "POST", "/templates", body={"name": unique("storm"), "body": "Say {{ x }}"}).body
    job_ids = []
    for index in range(12):
        body = {"templateId": made["id"], "input": f"n{index}", "provider": "bedrock", "model": HAIKU_45}
        answer = call_api(clean_queues, "POST", "/generate", body=body)
        assert answer.status == 202, answer.body
        job_ids.append(answer.body["id"])
    run_workers_until_done(clean_queues, job_ids, deadline_seconds=120)
    # Then every job completes and none reached the dead-letter queue
    jobs = rows("SELECT status, attempts FROM jobs WHERE id = ANY(%s)", job_ids)
    assert [j["status"] for j in jobs] == ["completed"] * 12, jobs
    assert rows("SELECT count(*) AS n FROM dead_letters WHERE job_id = ANY(%s)", job_ids)[0]["n"] == 0
    # Each throttle cost its call one attempt, nothing more (parked jobs spent none)
    assert sum(j["attempts"] for j in jobs) == 12 + 8 and use_bedrock.errors[HAIKU_45] == []
    # The throttles cut the limit: 12 straight successes grow a fresh route from 4 to 16 (slow start), while
    # after a cut it grows by one per round of `limit` successes
    assert provider_throttle.state("bedrock", HAIKU_45).limit < 8


def test_an_economy_job_completes_through_batch_inference_at_batch_prices(
    clean_queues: LocalRunner,
    use_bedrock: BedrockServer,
    economy_now: SetEnv,
) -> None:
    runner = clean_queues
    made = call_api(runner, "POST", "/templates", body={"name": unique("bdrk-eco"), "body": "{{ x }}"}).body
    job_ids = []
    for index in range(100):  # Bedrock batch inference takes 100 records at least
        body = {"templateId": made["id"], "input": f"row {index}", "provider": "bedrock", "model": HAIKU_3,
                "priority": "economy"}  # fmt: skip
        answer = call_api(runner, "POST", "/generate", body=body)
        assert answer.status == 202, answer.body
        job_ids.append(answer.body["id"])
    use_bedrock.batch_errors.add(job_ids[-1])  # one record comes back as an error record
    economy.run()
    first = call_api(runner, "GET", f"/jobs/{job_ids[0]}").body
    batch = call_api(runner, "GET", f"/batches/{first['batchId']}").body
    assert batch["provider"] == "bedrock" and ":model-invocation-job/" in batch["providerBatchId"]
    record = json.loads(
        boto3.client("s3", endpoint_url=runner.sqs_endpoint, region_name="us-east-1")
        .get_object(Bucket=BUCKET, Key=_input_key(use_bedrock, batch["providerBatchId"]))["Body"]
        .read()
        .splitlines()[0]
    )
    assert record["recordId"] == job_ids[0] and record["modelInput"]["anthropic_version"] == "bedrock-2023-05-31"
    for _ in range(6):  # Submitted → Validating → Scheduled → InProgress → Completed
        economy.run()
    jobs = {job_id: call_api(runner, "GET", f"/jobs/{job_id}").body for job_id in job_ids}
    done = jobs[job_ids[0]]
    assert done["status"] == "completed" and done["lane"] == "economy" and done["output"] == "Bedrock says: row 0"
    # Haiku 3 batch prices on Bedrock: $0.125 / $0.625 per million, half of $0.25 / $1.25
    assert Decimal(done["estimatedCostUSD"]) == (36 * Decimal("0.125") + 783 * Decimal("0.625")) / 1_000_000
    assert Decimal(done["savedCostUSD"]) == Decimal("0.00098775") - Decimal(done["estimatedCostUSD"])
    assert sum(j["status"] == "completed" for j in jobs.values()) == 99
    assert jobs[job_ids[-1]]["status"] == "failed" and jobs[job_ids[-1]]["error"]["retryable"] is False
    ended = call_api(runner, "GET", f"/batches/{first['batchId']}").body
    assert ended["status"] == "ended" and ended["requestCounts"]["succeeded"] == 99


def _input_key(server: BedrockServer, job_arn: str) -> str:
    uri: str = server.jobs[job_arn]["request"]["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
    return uri.removeprefix(f"s3://{BUCKET}/")


def test_a_group_below_the_batch_minimum_waits_then_runs_in_the_normal_lane(
    clean_queues: LocalRunner, use_bedrock: BedrockServer, economy_now: SetEnv
) -> None:
    runner = clean_queues
    made = call_api(runner, "POST", "/templates", body={"name": unique("bdrk-few"), "body": "{{ x }}"}).body
    body = {"templateId": made["id"], "input": "alone", "provider": "bedrock", "model": HAIKU_3, "priority": "economy"}
    job_id = call_api(runner, "POST", "/generate", body=body).body["id"]
    economy.run()  # due by time (max wait 0), but 1 record is under Bedrock's 100: it keeps waiting
    waiting = call_api(runner, "GET", f"/jobs/{job_id}").body
    assert waiting["status"] == "queued" and waiting["lane"] == "economy" and waiting.get("batchId") is None
    economy_now(PROMPTLAB_ECONOMY_SMALL_GROUP_MAX_WAIT_SECONDS="0")
    economy.run()
    moved = call_api(runner, "GET", f"/jobs/{job_id}").body
    assert moved["lane"] == "standard" and "takes 100 requests at least" in moved["warnings"][0]
    run_workers_until_done(runner, [job_id])
    done = call_api(runner, "GET", f"/jobs/{job_id}").body
    assert done["status"] == "completed" and done["estimatedCostUSD"] == "0.00098775"  # normal prices


def test_only_anthropic_models_go_through_bedrock_batches(runner: LocalRunner, use_bedrock: BedrockServer) -> None:
    made = call_api(runner, "POST", "/templates", body={"name": unique("nova"), "body": "{{ x }}"}).body
    body = {"templateId": made["id"], "input": "x", "provider": "bedrock", "model": "amazon.nova-lite-v1:0"}
    refused = call_api(runner, "POST", "/generate", body={**body, "priority": "economy"})
    assert refused.status == 422 and refused.body["error"]["details"]["fields"][0]["field"] == "priority"
    assert call_api(runner, "POST", "/generate", body=body).status == 202  # the normal lane takes it
    with pytest.raises(ProviderError) as unsupported:  # and the adapter never builds a record it cannot
        provider().native_body(call("amazon.nova-lite-v1:0"))
    assert unsupported.value.code == "batch_unsupported" and not unsupported.value.retryable


def test_the_models_bedrock_lists_in_the_region(use_bedrock: BedrockServer) -> None:
    assert reachable_models("us-east-1") == sorted(MODELS)


def test_bedrock_is_refused_at_submit_when_it_is_off(runner: LocalRunner, set_env: SetEnv) -> None:
    set_env(PROMPTLAB_BEDROCK_ENABLED="false")
    made = call_api(runner, "POST", "/templates", body={"name": unique("off"), "body": "{{ x }}"}).body
    answer = call_api(runner, "POST", "/generate", body={"templateId": made["id"], "input": "x", "provider": "bedrock"})
    assert answer.status == 422 and "PROMPTLAB_BEDROCK_ENABLED" in answer.body["error"]["message"]
