"""A local stand-in for Anthropic's Messages API and OpenAI's Chat Completions, on their real wire formats.

The model name steers it: `status-529` answers that status with the provider's error body and headers,
`slow` sleeps past any timeout, `malformed` answers broken JSON, `truncated` stops at max_tokens,
`refuse` refuses, `limited` allows LIMIT requests per WINDOW seconds (429 beyond, with the real rate-limit
headers); anything else answers normally. Asked for JSON, it first answers broken JSON and a schema-valid
value once the request carries a correction (`json-never`: never). Every request is kept.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from promptlab import json_output

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
    if not corrected or body["model"] == "json-never":
        return 'Sure! Here it is: {"title": '
    return json.dumps(json_output.example(schema) if schema else {"answer": "ok"})


def _anthropic_answer(body: dict[str, Any]) -> dict[str, Any]:
    text = "Claude says: " + body["messages"][-1]["content"][:40]
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
    text: str | None = "GPT says: " + body["messages"][-1]["content"][:40]
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
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        anthropic = self.path.endswith("/v1/messages")
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        model = body.get("model", "")
        request_id = f"req_{uuid.uuid4().hex[:16]}"
        ids = {"request-id": request_id} if anthropic else {"x-request-id": request_id}
        if model == "slow":
            time.sleep(3)
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
            headers["retry-after"] = "7"
            headers["anthropic-ratelimit-requests-remaining" if anthropic else "x-ratelimit-remaining-requests"] = "0"
        self._reply(status, json.dumps(payload).encode(), headers)
