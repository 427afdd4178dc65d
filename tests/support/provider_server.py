"""A local stand-in for Anthropic's Messages API and OpenAI's Chat Completions, on their real wire formats.

The model name steers it: `status-529` answers that status with the provider's error body and headers,
`slow` sleeps past any timeout, `malformed` answers broken JSON, `truncated` stops at max_tokens,
`refuse` refuses, `sleep-<ms>` answers after that long, `throttle-once` refuses a prompt's first request
with a 429 (`retry-after: 1`) and answers the next, `limited` allows LIMIT requests per WINDOW seconds (429
beyond, with the real rate-limit headers); anything else answers normally. Asked for JSON, it first answers
broken JSON and a schema-valid value once the request carries a correction (`json-never`: never; `json-echo`:
never, quoting the prompt as a model chatting back would). Every request is kept.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from promptlab.providers import json_output

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    408: "timeout_error", 409: "conflict_error", 413: "request_too_large", 422: "invalid_request_error",
    429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "api_error", 504: "api_error",
    529: "overloaded_error",
}  # fmt: skip


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True
    LIMIT = 4  # model `limited`: requests per WINDOW seconds
    WINDOW = 1.0

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.limited_window: list[float] = []
        self.limited_log: list[tuple[float, int]] = []
        self.throttled_once: set[str] = set()
        self.batches: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> ProviderServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


CORRECTION = "Your previous answer was not valid"


def _json_answer(body: dict[str, Any], schema: dict[str, Any] | None) -> str:
    """JSON mode: a broken answer first (and always for model `json-never`), a valid one once corrected."""
    corrected = any(CORRECTION in str(m.get("content")) for m in body["messages"])
    if body["model"] == "json-echo":
        first = next((str(m.get("content")) for m in body["messages"] if m.get("role") == "user"), "")
        return f'You asked: {first[:80]} Here it is: {{"title": '
    if not corrected or body["model"] == "json-never":
        return 'Sure! Here it is: {"title": '
    return json.dumps(json_output.example(schema) if schema else {"answer": "ok"})


def _last_text(content: Any) -> str:
    """The text of a turn's content: a string, or blocks/parts (text, a tool's result)."""
    if isinstance(content, str):
        return content
    texts = []
    for block in content or []:
        if block.get("type") == "text":
            texts.append(block["text"])
        elif block.get("type") == "tool_result":
            texts.append(block["content"] if isinstance(block["content"], str) else _last_text(block["content"]))
    return " ".join(texts)


def _shown(messages: list[dict[str, Any]]) -> str:
    """`[saw N]` when the turns hold images or documents (Anthropic blocks or OpenAI parts)."""
    kinds = {"image", "document", "image_url", "file"}
    count = sum(
        1 for m in messages if isinstance(m.get("content"), list) for b in m["content"] if b.get("type") in kinds
    )
    return f"[saw {count}] " if count else ""


def _anthropic_tool_use(body: dict[str, Any]) -> dict[str, Any] | None:
    """A `tool_use` answer when tools are offered and the last turn is not a tool's result."""
    last = body["messages"][-1]["content"]
    if not body.get("tools") or (isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)):
        return None
    choice = body.get("tool_choice") or {}
    name = choice.get("name") or body["tools"][0]["name"]
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": body["model"],
        "content": [{"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": name,
                     "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 50, "output_tokens": 20, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
    }  # fmt: skip


def _anthropic_answer(body: dict[str, Any]) -> dict[str, Any]:
    tool_use = _anthropic_tool_use(body)
    if tool_use is not None:
        return tool_use
    text = "Claude says: " + _shown(body["messages"]) + _last_text(body["messages"][-1]["content"])[:40]
    system = " ".join(b.get("text", "") for b in body.get("system") or [])
    if "JSON" in system:
        marker = "JSON Schema: "
        text = _json_answer(body, json.loads(system.split(marker, 1)[1]) if marker in system else None)
    stop = "end_turn"
    if body["model"] == "truncated":
        text, stop = text[:10], "max_tokens"
    if body["model"] == "refuse":
        text, stop = "", "refusal"
    cached = any(isinstance(b, dict) and b.get("cache_control") for b in body.get("system") or [])
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}] if text else [],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 36,
            "output_tokens": 783,
            "cache_creation_input_tokens": 1000 if cached else 0,
            "cache_read_input_tokens": 0,
        },
    }


def _openai_answer(body: dict[str, Any]) -> dict[str, Any]:
    last = body["messages"][-1]
    if body.get("tools") and last["role"] != "tool" and body.get("tool_choice") != "none":
        choice = body.get("tool_choice")
        name = choice["function"]["name"] if isinstance(choice, dict) else body["tools"][0]["function"]["name"]
        call = {"id": f"call_{uuid.uuid4().hex[:20]}", "type": "function",
                "function": {"name": name, "arguments": json.dumps({"city": "Paris"})}}  # fmt: skip
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                         "logprobs": None, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 60, "completion_tokens": 15, "total_tokens": 75},
        }  # fmt: skip
    text: str | None = "GPT says: " + _shown(body["messages"]) + _last_text(last["content"])[:40]
    if body.get("response_format"):
        text = _json_answer(body, (body["response_format"].get("json_schema") or {}).get("schema"))
    finish = "stop"
    if body["model"] == "truncated":
        finish = "length"
    if body["model"] == "refuse":
        text, finish = None, "content_filter"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": 1036,
            "completion_tokens": 783,
            "total_tokens": 1819,
            "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


class _Handler(BaseHTTPRequestHandler):
    server: ProviderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.endswith("/v1/files"):
            self._upload(raw)
            return
        body = json.loads(raw)
        if self.path.endswith("/v1/messages/batches"):
            self._json(200, self._anthropic_batch(self._new_batch("anthropic", body["requests"])))
            return
        if self.path.endswith("/v1/batches"):
            lines = [
                json.loads(line) for line in self.server.files[body["input_file_id"]].decode().splitlines() if line
            ]
            requests = [{"custom_id": line["custom_id"], "params": line["body"]} for line in lines]
            batch = self._new_batch("openai", requests)
            batch["input_file_id"] = body["input_file_id"]
            self._json(200, self._openai_batch(batch))
            return
        anthropic = self.path.endswith("/v1/messages")
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        model = body.get("model", "")
        request_id = f"req_{uuid.uuid4().hex[:16]}"
        ids = {"request-id": request_id} if anthropic else {"x-request-id": request_id}
        if model == "slow":
            time.sleep(3)
        if model.startswith("sleep-"):
            time.sleep(int(model.removeprefix("sleep-")) / 1000)
        if model == "throttle-once":
            prompt = json.dumps(body.get("messages"), sort_keys=True)
            with self.server.lock:
                first = prompt not in self.server.throttled_once
                self.server.throttled_once.add(prompt)
            if first:
                self._error(429, anthropic, {**ids, "retry-after": "1"})
                return
        if model == "limited" and not self._within_limit(anthropic, ids):
            return
        if model == "malformed":
            self._reply(200, b'{"id": "broken', ids)
            return
        if model.startswith("status-"):
            status = int(model.removeprefix("status-"))
            self._error(status, anthropic, ids)
            return
        answer = _anthropic_answer(body) if anthropic else _openai_answer(body)
        if model == "limited":
            self._reply(200, json.dumps(answer).encode(), {**ids, **self.limited_headers})
            return
        limits = (
            {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "49"}
            if anthropic
            else {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499"}
        )
        self._reply(200, json.dumps(answer).encode(), {**ids, **limits})

    # ---- batch APIs: a batch ends on its second status read; a request's last message steers its outcome:
    # `batch-error-retryable`, `batch-error-permanent`, `batch-expire`; anything else succeeds.

    def _json(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _new_batch(self, kind: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
        batch_id = f"{'msgbatch' if kind == 'anthropic' else 'batch'}_{uuid.uuid4().hex[:20]}"
        batch = {"id": batch_id, "kind": kind, "requests": requests, "reads": 0, "created": int(time.time())}
        self.server.batches[batch_id] = batch
        return batch

    @staticmethod
    def _outcome(request: dict[str, Any]) -> str:
        last = str(request["params"]["messages"][-1]["content"])
        for marker in ("batch-error-retryable", "batch-error-permanent", "batch-expire"):
            if marker in last:
                return marker
        return "ok"

    def _counts(self, batch: dict[str, Any]) -> dict[str, int]:
        outcomes = [self._outcome(r) for r in batch["requests"]]
        return {
            "succeeded": outcomes.count("ok"),
            "errored": outcomes.count("batch-error-retryable") + outcomes.count("batch-error-permanent"),
            "expired": outcomes.count("batch-expire"),
        }

    def _anthropic_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        ended = batch["reads"] >= 2
        counts = self._counts(batch)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(batch["created"]))
        return {
            "id": batch["id"], "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
            "request_counts": {
                "processing": 0 if ended else len(batch["requests"]),
                "succeeded": counts["succeeded"] if ended else 0,
                "errored": counts["errored"] if ended else 0,
                "canceled": 0,
                "expired": counts["expired"] if ended else 0,
            },
            "created_at": stamp,
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(batch["created"] + 86_400)),
            "ended_at": stamp if ended else None, "archived_at": None, "cancel_initiated_at": None,
            "results_url": f"{self.server.url}/v1/messages/batches/{batch['id']}/results" if ended else None,
        }  # fmt: skip

    def _anthropic_results(self, batch: dict[str, Any]) -> bytes:
        lines = []
        for request in batch["requests"]:
            outcome = self._outcome(request)
            if outcome == "ok":
                result: dict[str, Any] = {"type": "succeeded", "message": _anthropic_answer(request["params"])}
            elif outcome == "batch-expire":
                result = {"type": "expired"}
            else:
                kind = "api_error" if outcome == "batch-error-retryable" else "invalid_request_error"
                result = {"type": "errored", "error": {"type": "error", "error": {"type": kind, "message": outcome}}}
            lines.append(json.dumps({"custom_id": request["custom_id"], "result": result}))
        return ("\n".join(lines) + "\n").encode()

    def _openai_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        ended = batch["reads"] >= 2
        counts = self._counts(batch)
        status = "in_progress"
        if ended:
            status = "expired" if counts["expired"] else "completed"
            if "output_file_id" not in batch:
                self._openai_files(batch)
        return {
            "id": batch["id"], "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
            "input_file_id": batch.get("input_file_id", "file-x"), "completion_window": "24h", "status": status,
            "output_file_id": batch.get("output_file_id"), "error_file_id": batch.get("error_file_id"),
            "created_at": batch["created"], "expires_at": batch["created"] + 86400,
            "request_counts": {
                "total": len(batch["requests"]), "completed": counts["succeeded"] if ended else 0,
                "failed": counts["errored"] if ended else 0,
            },
            "metadata": None,
        }  # fmt: skip

    def _openai_files(self, batch: dict[str, Any]) -> None:
        output, errors = [], []
        for request in batch["requests"]:
            outcome = self._outcome(request)
            if outcome == "batch-expire":
                continue  # no line: the batch expired before this request ran
            if outcome == "ok":
                response = {
                    "status_code": 200,
                    "request_id": uuid.uuid4().hex,
                    "body": _openai_answer(request["params"]),
                }
                output.append({"id": f"batch_req_{uuid.uuid4().hex[:12]}", "custom_id": request["custom_id"],
                               "response": response, "error": None})  # fmt: skip
            else:
                status = 500 if outcome == "batch-error-retryable" else 400
                body = {
                    "error": {"message": outcome, "type": "server_error" if status == 500 else "invalid_request_error"}
                }
                errors.append({"id": f"batch_req_{uuid.uuid4().hex[:12]}", "custom_id": request["custom_id"],
                               "response": {"status_code": status, "request_id": uuid.uuid4().hex, "body": body},
                               "error": None})  # fmt: skip
        for key, lines in (("output_file_id", output), ("error_file_id", errors)):
            if lines:
                file_id = f"file-{uuid.uuid4().hex[:20]}"
                self.server.files[file_id] = ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
                batch[key] = file_id

    def _upload(self, raw: bytes) -> None:
        """`POST /v1/files` (multipart): keep the uploaded JSONL."""
        boundary = self.headers["Content-Type"].split("boundary=", 1)[1].strip('"').encode()
        content = b""
        for part in raw.split(b"--" + boundary):
            head, _, data = part.partition(b"\r\n\r\n")
            if b'name="file"' in head:
                content = data.rsplit(b"\r\n", 1)[0]
        file_id = f"file-{uuid.uuid4().hex[:20]}"
        self.server.files[file_id] = content
        self._json(200, {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                         "filename": "promptlab-batch.jsonl", "purpose": "batch", "status": "processed"})  # fmt: skip

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        parts = self.path.split("?")[0].rstrip("/").split("/")
        if "files" in parts and parts[-1] == "content":
            self._json(200, self.server.files[parts[-2]], "application/octet-stream")
            return
        batch = self.server.batches.get(parts[-2] if parts[-1] == "results" else parts[-1])
        if batch is None:
            self._json(404, {"error": {"type": "not_found_error", "message": "no such batch"}})
            return
        if parts[-1] == "results":
            self._json(200, self._anthropic_results(batch), "application/binary")
            return
        batch["reads"] += 1
        self._json(200, self._anthropic_batch(batch) if batch["kind"] == "anthropic" else self._openai_batch(batch))

    def _within_limit(self, anthropic: bool, ids: dict[str, str]) -> bool:
        """Model `limited`: at most `LIMIT` requests per `WINDOW` seconds, reported in the real headers;
        beyond it, a 429 with retry-after. Every answer is recorded in `limited_log`."""
        server = self.server
        with server.lock:
            now = time.monotonic()
            server.limited_window = [t for t in server.limited_window if t > now - server.WINDOW]
            allowed = len(server.limited_window) < server.LIMIT
            if allowed:
                server.limited_window.append(now)
            remaining = server.LIMIT - len(server.limited_window)
            reset = (server.limited_window[0] + server.WINDOW - now) if server.limited_window else server.WINDOW
            server.limited_log.append((now, 200 if allowed else 429))
        if anthropic:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + reset)) + "Z"
            headers = {
                "anthropic-ratelimit-requests-remaining": str(remaining),
                "anthropic-ratelimit-requests-reset": stamp,
            }
        else:
            headers = {
                "x-ratelimit-remaining-requests": str(remaining),
                "x-ratelimit-reset-requests": f"{int(reset * 1000)}ms",
            }
        self.limited_headers = headers
        if not allowed:
            payload = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
            self._reply(429, json.dumps(payload).encode(), {**ids, **headers, "retry-after": f"{reset:.3f}"})
        return allowed

    def _error(self, status: int, anthropic: bool, ids: dict[str, str]) -> None:
        message = "model: status-404" if status == 404 else f"error {status}"
        if anthropic:
            payload = {
                "type": "error",
                "error": {"type": ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message},
            }
        else:
            code = "model_not_found" if status == 404 else None
            payload = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        headers = dict(ids)
        if status == 429:
            headers.setdefault("retry-after", "7")
            headers["anthropic-ratelimit-requests-remaining" if anthropic else "x-ratelimit-remaining-requests"] = "0"
        self._reply(status, json.dumps(payload).encode(), headers)
