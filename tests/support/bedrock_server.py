"""A local stand-in for Amazon Bedrock on its REST-JSON wire format (what boto3 sends and parses).

Runtime: `POST /model/{modelId}/converse`. Control plane: `GET /foundation-models`,
`POST /model-invocation-job`, `GET /model-invocation-job/{jobIdentifier}`; a batch job reads its JSONL input
from S3 (moto, at `AWS_ENDPOINT_URL`) and, after four status reads (Submitted → Validating → Scheduled →
InProgress → Completed), writes `<output>/<job id>/input.jsonl.out` and `manifest.json.out` as Bedrock does.

Every request must be SigV4-signed for the `bedrock` service (403 `UnrecognizedClientException` otherwise).
Errors are answered as Bedrock does: the status, `x-amzn-ErrorType: <Name>`, and `{"message": …}`.
`errors[model]` scripts the next answers of a model (an error name each, `ok` for an answer);
`throttle_rate` throttles that share of calls at random (a storm).
"""

from __future__ import annotations

import json
import random
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

STATUS_OF = {
    "ThrottlingException": 429, "ServiceQuotaExceededException": 400, "ModelNotReadyException": 429,
    "ServiceUnavailableException": 503, "InternalServerException": 500, "ModelTimeoutException": 408,
    "ModelErrorException": 424, "ValidationException": 400, "AccessDeniedException": 403,
    "ResourceNotFoundException": 404, "UnrecognizedClientException": 403,
}  # fmt: skip
MODELS = [
    "anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0", "amazon.nova-lite-v1:0",
]  # fmt: skip
LIFECYCLE = ["Submitted", "Validating", "Scheduled", "InProgress", "Completed"]
ACCOUNT = "123456789012"


class BedrockServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, region: str = "us-east-1", s3_endpoint: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.region = region
        self.s3_endpoint = s3_endpoint  # where batch files live (default: AWS_ENDPOINT_URL, moto)
        self.requests: list[dict[str, Any]] = []
        self.errors: dict[str, list[str]] = {}
        self.throttle_rate = 0.0
        self.batch_errors: set[str] = set()  # record ids answered with an error record
        self.jobs: dict[str, dict[str, Any]] = {}
        self.converse_requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> BedrockServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def next_error(self, model: str) -> str | None:
        with self.lock:
            script = self.errors.get(model)
            if script:
                step = script.pop(0)
                return None if step == "ok" else step
        if self.throttle_rate and random.random() < self.throttle_rate:
            return "ThrottlingException"
        return None


def _s3(server: BedrockServer) -> Any:
    if server.s3_endpoint is None:  # the environment's (the in-process runner's moto)
        return boto3.client("s3", region_name=server.region)
    return boto3.client(
        "s3", endpoint_url=server.s3_endpoint, region_name=server.region,
        aws_access_key_id="local", aws_secret_access_key="local",
    )  # fmt: skip


def _answer_text(messages: list[dict[str, Any]], system: str) -> str:
    last = "".join(
        block.get("text", "") + "".join(c.get("text", "") for c in (block.get("toolResult") or {}).get("content", []))
        for block in messages[-1]["content"]
    )
    if "JSON" in system:
        return json.dumps({"answer": last[:40]})
    return "Bedrock says: " + last[:40]


class _Handler(BaseHTTPRequestHandler):
    server: BedrockServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: Any) -> None:
        return

    def _reply(self, status: int, payload: Any, error: str | None = None) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error:
            self.send_header("x-amzn-ErrorType", f"{error}:http://internal.amazon.com/coral/com.amazon.bedrock/")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, name: str, message: str) -> None:
        self._reply(STATUS_OF[name], {"message": message}, error=name)

    def _signed(self) -> bool:
        auth = self.headers.get("Authorization") or ""
        return auth.startswith("AWS4-HMAC-SHA256 Credential=") and "/bedrock/aws4_request" in auth

    def _body(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return json.loads(raw) if raw else {}

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self._body()
        path = urllib.parse.unquote(self.path)
        with self.server.lock:
            self.server.requests.append({"path": path, "body": body, "headers": dict(self.headers)})
        if not self._signed():
            return self._error("UnrecognizedClientException", "The security token included in the request is invalid.")
        if path.startswith("/model/") and path.endswith("/converse"):
            return self._converse(path.removeprefix("/model/").removesuffix("/converse"), body)
        if path == "/model-invocation-job":
            return self._create_job(body)
        self._error("ValidationException", f"no operation at {path}")

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        path = urllib.parse.unquote(self.path)
        if not self._signed():
            return self._error("UnrecognizedClientException", "The security token included in the request is invalid.")
        if path == "/foundation-models":
            region = self.server.region
            summaries = [
                {"modelId": m, "modelArn": f"arn:aws:bedrock:{region}::foundation-model/{m}", "providerName": "x"}
                for m in MODELS
            ]
            return self._reply(200, {"modelSummaries": summaries})
        if path.startswith("/model-invocation-job/"):
            return self._get_job(path.removeprefix("/model-invocation-job/"))
        self._error("ValidationException", f"no operation at {path}")

    def _converse(self, model: str, body: dict[str, Any]) -> None:
        failure = self.server.next_error(model)
        if failure:
            return self._error(failure, f"{failure} for {model}")
        if model.startswith("missing"):
            return self._error("ResourceNotFoundException", "The requested resource could not be found.")
        system_blocks = body.get("system") or []
        system = " ".join(b.get("text", "") for b in system_blocks)
        cached = any("cachePoint" in b for b in system_blocks)
        self.server.converse_requests.append(body)
        tools = ((body.get("toolConfig") or {}).get("tools")) or []
        last = body["messages"][-1]["content"]
        if tools and not any("toolResult" in block for block in last):  # Converse's toolUse answer
            spec = tools[0]["toolSpec"]
            use = {"toolUseId": f"tooluse_{uuid.uuid4().hex[:12]}", "name": spec["name"], "input": {"city": "Paris"}}
            return self._reply(200, {
                "output": {"message": {"role": "assistant", "content": [{"toolUse": use}]}},
                "stopReason": "tool_use", "usage": {"inputTokens": 50, "outputTokens": 20, "totalTokens": 70},
            })  # fmt: skip
        shown = sum(1 for m in body["messages"] for b in m["content"] if "image" in b or "document" in b)
        text = (f"[saw {shown}] " if shown else "") + _answer_text(body["messages"], system)
        stop = "end_turn"
        if model.startswith("truncated"):
            text, stop = text[:10], "max_tokens"
        if model.startswith("guarded"):
            text, stop = "", "guardrail_intervened"
        usage = {"inputTokens": 36, "outputTokens": 783, "totalTokens": 819}
        if cached:
            usage.update(cacheWriteInputTokens=1000, cacheReadInputTokens=0)
        self._reply(200, {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 120},
        })  # fmt: skip

    def _create_job(self, body: dict[str, Any]) -> None:
        job_id = uuid.uuid4().hex[:12]
        arn = f"arn:aws:bedrock:{self.server.region}:{ACCOUNT}:model-invocation-job/{job_id}"
        uri = body["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        records = [
            json.loads(line) for line in _s3(self.server).get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
        ]
        with self.server.lock:
            self.server.jobs[arn] = {"id": job_id, "request": body, "records": records, "reads": 0}
        self._reply(200, {"jobArn": arn})

    def _get_job(self, arn: str) -> None:
        with self.server.lock:
            job = self.server.jobs.get(arn)
            if job is not None:
                job["reads"] += 1
                status = LIFECYCLE[min(job["reads"], len(LIFECYCLE) - 1)]
        if job is None:
            return self._error("ResourceNotFoundException", f"no job {arn}")
        request = job["request"]
        if status == "Completed" and not job.get("written"):
            self._write_output(job)
        self._reply(200, {
            "jobArn": arn, "jobName": request["jobName"], "modelId": request["modelId"], "roleArn": request["roleArn"],
            "status": status, "submitTime": "2026-12-01T00:00:00Z", "jobExpirationTime": "2026-12-02T00:00:00Z",
            "inputDataConfig": request["inputDataConfig"], "outputDataConfig": request["outputDataConfig"],
        })  # fmt: skip

    def _write_output(self, job: dict[str, Any]) -> None:
        uri = job["request"]["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"]
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        lines, errors = [], 0
        for record in job["records"]:
            model_input = record["modelInput"]
            if record["recordId"] in self.server.batch_errors:
                errors += 1
                error = {"errorCode": 400, "errorMessage": "Malformed input request"}
                lines.append({"recordId": record["recordId"], "modelInput": model_input, "error": error})
                continue
            system = " ".join(b.get("text", "") for b in model_input.get("system") or [])
            messages = [  # Anthropic's content: a string, or text blocks
                {"content": [{"text": m["content"]}] if isinstance(m["content"], str) else m["content"]}
                for m in model_input["messages"]
            ]
            output = {
                "id": f"msg_bdrk_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant",
                "model": "claude-3-haiku-20240307", "stop_reason": "end_turn",
                "content": [{"type": "text", "text": _answer_text(messages, system)}],
                "usage": {"input_tokens": 36, "output_tokens": 783},
            }  # fmt: skip
            lines.append({"recordId": record["recordId"], "modelInput": model_input, "modelOutput": output})
        folder = f"{prefix.rstrip('/')}/{job['id']}"
        text = "\n".join(json.dumps(line) for line in lines) + "\n"
        _s3(self.server).put_object(Bucket=bucket, Key=f"{folder}/input.jsonl.out", Body=text.encode())
        manifest = {
            "totalRecordCount": len(lines), "processedRecordCount": len(lines),
            "successRecordCount": len(lines) - errors, "errorRecordCount": errors,
        }  # fmt: skip
        _s3(self.server).put_object(
            Bucket=bucket, Key=f"{folder}/manifest.json.out", Body=json.dumps(manifest).encode()
        )
        job["written"] = True
