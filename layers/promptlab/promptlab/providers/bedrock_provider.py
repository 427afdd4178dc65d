"""Amazon Bedrock: the Converse API for calls, batch inference (S3 JSONL) for the economy lane.

IAM instead of API keys: boto3 signs with the function's role (locally, whatever credentials boto3 finds).
boto3 honours `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `AWS_ENDPOINT_URL_BEDROCK`, `AWS_ENDPOINT_URL_S3` and
`AWS_ENDPOINT_URL`, so any stand-in speaking Bedrock's REST-JSON works. Retries are off: the queue retries,
and Bedrock's throttles feed the route's adaptive concurrency limit like any 429.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import lru_cache
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from promptlab.core.clock import utc_now
from promptlab.core.errors import ConfigurationError
from promptlab.core.json_types import JsonObject
from promptlab.providers.base import (
    BatchItem,
    BatchStatus,
    GenerationCall,
    ProviderError,
    ProviderResult,
    ToolCall,
    Usage,
    error_for_status,
)
from promptlab.providers.converse_format import converse_messages, tool_config
from promptlab.providers.http_errors import timeout_error
from promptlab.providers.messages_format import answer_parts, messages_body, system_prompt

# Bedrock's error names (the `x-amzn-ErrorType` of an answer) → (our code, retryable, the status it stands
# for: the flow control reads 429 as "we send too much", 503/500 as overload).
ERRORS: dict[str, tuple[str, bool, int]] = {
    "ThrottlingException": ("rate_limited", True, 429),
    "ServiceQuotaExceededException": ("rate_limited", True, 429),
    "ModelNotReadyException": ("model_not_ready", True, 429),
    "ServiceUnavailableException": ("provider_unavailable", True, 503),
    "InternalServerException": ("provider_unavailable", True, 500),
    "ModelTimeoutException": ("timeout", True, 408),
    "ModelErrorException": ("model_error", False, 424),
    "ValidationException": ("invalid_request", False, 400),
    "AccessDeniedException": ("permission_denied", False, 403),
    "ResourceNotFoundException": ("model_not_found", False, 404),
    "UnrecognizedClientException": ("authentication_failed", False, 403),
    "InvalidSignatureException": ("authentication_failed", False, 403),
    "ExpiredTokenException": ("authentication_failed", False, 403),
}
# Batch inference job statuses (GetModelInvocationJob) that will not change again.
ENDED_STATUSES = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
BATCH_HOURS = 24
ANTHROPIC_VERSION = "bedrock-2023-05-31"  # what Anthropic models on Bedrock read in a native (batch) body
_STOP_REASONS = {"end_turn": "end_turn", "stop_sequence": "stop_sequence", "max_tokens": "max_tokens",
                 "tool_use": "tool_use"}  # fmt: skip


def _client(service: str, region: str, read_timeout: int) -> Any:
    """A boto3 client per service, region, timeout and endpoint (the `AWS_ENDPOINT_URL_*` boto3 reads now)."""
    variable = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    endpoint = os.environ.get(variable) or os.environ.get("AWS_ENDPOINT_URL")
    return _cached_client(service, region, read_timeout, endpoint)


@lru_cache(maxsize=32)
def _cached_client(service: str, region: str, read_timeout: int, _endpoint: str | None) -> Any:
    config = Config(
        region_name=region,
        retries={"total_max_attempts": 1, "mode": "standard"},  # the queue owns retries
        connect_timeout=5,
        read_timeout=read_timeout,
        user_agent_extra="promptlab",
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]


class BedrockProvider:
    """Models on Amazon Bedrock (model ids or cross-region inference profiles) through Converse."""

    name = "bedrock"

    def __init__(self, *, region: str, known_models: tuple[str, ...] = ()) -> None:
        self.region = region
        self._known = known_models

    # One call: Converse.

    def converse_request(self, call: GenerationCall) -> JsonObject:
        """The Converse request for a call."""
        request: JsonObject = {
            "modelId": call.model,
            "messages": converse_messages(call.messages),
        }
        tools = tool_config(call)
        if tools is not None:
            request["toolConfig"] = tools
        inference: JsonObject = {"maxTokens": call.max_tokens}
        if call.temperature is not None:
            inference["temperature"] = float(call.temperature)
        if call.top_p is not None:
            inference["topP"] = float(call.top_p)
        if call.stop:
            inference["stopSequences"] = list(call.stop)
        request["inferenceConfig"] = inference
        system = system_prompt(call)
        if system:
            blocks: list[JsonObject] = [{"text": system}]
            if call.cache_system:
                blocks.append({"cachePoint": {"type": "default"}})  # prompt caching: the system prompt is cached
            request["system"] = blocks
        return request

    def generate(self, call: GenerationCall) -> ProviderResult:
        runtime = _client("bedrock-runtime", self.region, max(1, round(call.timeout_seconds)))
        with self.classified(model=call.model, timeout=call.timeout_seconds):
            answer = runtime.converse(**self.converse_request(call))
        stop = str(answer.get("stopReason") or "unknown")
        if stop in {"guardrail_intervened", "content_filtered"}:
            raise ProviderError(code="content_refused", message=f"Bedrock stopped the answer: {stop}", retryable=False)
        content = ((answer.get("output") or {}).get("message") or {}).get("content") or []
        text = "".join(block.get("text", "") for block in content if isinstance(block, dict))
        tool_calls = tuple(
            ToolCall(
                id=str(use.get("toolUseId")), name=str(use.get("name")), arguments=json.dumps(use.get("input") or {})
            )
            for use in (block.get("toolUse") for block in content if isinstance(block, dict))
            if use
        )
        usage = answer.get("usage") or {}
        return ProviderResult(
            text=text,
            usage=Usage(
                input_tokens=int(usage.get("inputTokens") or 0),
                output_tokens=int(usage.get("outputTokens") or 0),
                cache_read_tokens=int(usage.get("cacheReadInputTokens") or 0),
                cache_write_tokens=int(usage.get("cacheWriteInputTokens") or 0),
            ),
            model=call.model,
            request_id=(answer.get("ResponseMetadata") or {}).get("RequestId"),
            finish_reason=_STOP_REASONS.get(stop, stop),
            truncated=stop == "max_tokens" or not (text or tool_calls),
            rate_limits={},  # Bedrock sends none: its throttles alone steer the route's limit
            tool_calls=tool_calls,
        )

    @contextmanager
    def classified(self, *, model: str, timeout: float) -> Iterator[None]:
        """botocore's failures as classified `ProviderError`s (messages name the model and the region)."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            raise self.client_error(exc, model) from exc
        except (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError) as exc:
            raise timeout_error(timeout) from exc
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError) as exc:
            raise ProviderError(code="connection_error", message=str(exc), retryable=True) from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise ProviderError(
                code="authentication_failed",
                message=f"no AWS credentials for Bedrock in {self.region} (the function's role, or AWS_PROFILE)",
                retryable=False,
            ) from exc

    def client_error(self, exc: botocore.exceptions.ClientError, model: str) -> ProviderError:
        answer: dict[str, Any] = dict(exc.response)
        error = answer.get("Error") or {}
        name = str(error.get("Code") or "")
        message = str(error.get("Message") or name)
        status = int((answer.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 500)
        if name == "AccessDeniedException":
            message = (
                f"access to {model!r} in {self.region} was denied ({message}): request model access in the Bedrock"
                " console (Model access) and allow bedrock:InvokeModel on its ARN (the BedrockModelArns parameter)"
            )
        elif name == "ResourceNotFoundException":
            listing = ", ".join(self._known) or "none configured"
            message = (
                f"model {model!r} was not found in {self.region} ({message}); configured models: {listing}"
                " (cross-region inference profiles start with us., eu. or apac.)"
            )
        if name not in ERRORS:
            return error_for_status(status, f"{name}: {message}" if name else message)
        code, retryable, stands_for = ERRORS[name]
        return ProviderError(code=code, message=message, retryable=retryable, status=stands_for)

    # The economy lane: batch inference (JSONL records in S3, results under the output prefix).

    def native_body(self, call: GenerationCall) -> JsonObject:
        """A batch record's `modelInput`: the model's own request body (Anthropic's Messages format)."""
        if "anthropic." not in call.model:
            raise ProviderError(
                code="batch_unsupported",
                message=f"Bedrock batch inference here takes Anthropic models; {call.model!r} is not one",
                retryable=False,
            )
        return {"anthropic_version": ANTHROPIC_VERSION, **messages_body(call)}


class BedrockBatches:
    """Bedrock batch inference: `CreateModelInvocationJob` over a JSONL file in this stack's bucket."""

    name = "bedrock"

    def __init__(self, *, provider: BedrockProvider, bucket: str | None, role_arn: str | None) -> None:
        if not bucket or not role_arn:
            raise ConfigurationError(
                "Bedrock batch inference needs PROMPTLAB_BEDROCK_BATCH_BUCKET and PROMPTLAB_BEDROCK_BATCH_ROLE_ARN"
                " (the template makes both when BedrockModelArns is set)"
            )
        self.provider, self.bucket, self.role_arn = provider, bucket, role_arn

    def _bedrock(self) -> Any:
        return _client("bedrock", self.provider.region, 60)

    def _s3(self) -> Any:
        return _client("s3", self.provider.region, 60)

    def submit_batch(self, calls: list[tuple[str, GenerationCall]]) -> BatchStatus:
        model = calls[0][1].model
        name = f"promptlab-{uuid.uuid4().hex}"
        lines = [
            json.dumps({"recordId": custom_id, "modelInput": self.provider.native_body(call)})
            for custom_id, call in calls
        ]
        with self.provider.classified(model=model, timeout=60):
            key = f"batches/{name}/input.jsonl"
            self._s3().put_object(Bucket=self.bucket, Key=key, Body="\n".join(lines).encode() + b"\n")
            job = self._bedrock().create_model_invocation_job(
                jobName=name,
                roleArn=self.role_arn,
                modelId=model,
                inputDataConfig={
                    "s3InputDataConfig": {
                        "s3Uri": f"s3://{self.bucket}/batches/{name}/input.jsonl",
                        "s3InputFormat": "JSONL",
                    }
                },
                outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{self.bucket}/batches/{name}/output/"}},
                timeoutDurationInHours=BATCH_HOURS,
            )
        return BatchStatus(
            provider_batch_id=str(job["jobArn"]),
            ended=False,
            counts={"processing": len(calls)},
            expires_at=utc_now() + timedelta(hours=BATCH_HOURS),
        )

    def _job(self, job_arn: str) -> JsonObject:
        with self.provider.classified(model="batch", timeout=30):
            job: JsonObject = self._bedrock().get_model_invocation_job(jobIdentifier=job_arn)
        return job

    def _output(self, job: JsonObject, name: str) -> bytes | None:
        """A file of the job's output folder (`<output prefix><job id>/<name>`), None when there is none."""
        uri = str(job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        key = f"{prefix.rstrip('/')}/{str(job['jobArn']).rsplit('/', 1)[-1]}/{name}"
        with self.provider.classified(model="batch", timeout=60):
            try:
                body: bytes = self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()
            except botocore.exceptions.ClientError as exc:
                if (exc.response.get("Error") or {}).get("Code") in {"NoSuchKey", "404"}:
                    return None
                raise
        return body

    def batch_status(self, provider_batch_id: str) -> BatchStatus:
        job = self._job(provider_batch_id)
        ended = job.get("status") in ENDED_STATUSES
        counts: dict[str, int] = {}
        if ended:
            manifest = self._output(job, "manifest.json.out")
            if manifest:
                numbers = json.loads(manifest)
                counts = {
                    "succeeded": int(numbers.get("successRecordCount") or 0),
                    "errored": int(numbers.get("errorRecordCount") or 0),
                }
        return BatchStatus(
            provider_batch_id=provider_batch_id, ended=ended, counts=counts, expires_at=job.get("jobExpirationTime")
        )

    def batch_results(self, provider_batch_id: str) -> Iterator[BatchItem]:
        job = self._job(provider_batch_id)
        records = self._output(job, "input.jsonl.out") or b""
        for line in records.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            custom_id = str(record.get("recordId"))
            if record.get("error"):
                failure = record["error"]
                yield BatchItem(
                    custom_id=custom_id,
                    kind="errored",
                    error=error_for_status(int(failure.get("errorCode") or 500), str(failure.get("errorMessage"))),
                )
                continue
            try:
                yield BatchItem(custom_id=custom_id, kind="succeeded", result=_native_result(record["modelOutput"]))
            except ProviderError as refused:
                yield BatchItem(custom_id=custom_id, kind="errored", error=refused)
        # Records without a line (a failed, stopped or expired job) are settled as expired by the lane.


def _native_result(output: JsonObject) -> ProviderResult:
    """An Anthropic model's native answer (a batch record's `modelOutput`)."""
    if output.get("stop_reason") == "refusal":
        raise ProviderError(code="content_refused", message="the model refused to answer", retryable=False)
    text, tool_calls = answer_parts(list(output.get("content") or []))
    usage = output.get("usage") or {}
    stop = str(output.get("stop_reason") or "unknown")
    return ProviderResult(
        text=text,
        usage=Usage(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
            cache_write_tokens=int(usage.get("cache_creation_input_tokens") or 0),
        ),
        model=str(output.get("model") or ""),
        request_id=output.get("id"),
        finish_reason=stop,
        truncated=stop == "max_tokens" or not (text or tool_calls),
        tool_calls=tool_calls,
    )


def reachable_models(region: str) -> list[str]:
    """The foundation models Bedrock lists in the region (what `promptlab local` prints at start)."""
    answer = _client("bedrock", region, 10).list_foundation_models()
    return sorted(str(m["modelId"]) for m in answer.get("modelSummaries") or [])
