"""An offline, deterministic provider: same input → same output, realistic token counts."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from promptlab.core.json_types import JsonObject
from promptlab.core.settings import get_settings
from promptlab.core.tokens import TOKEN, count_tokens, prompt_tokens
from promptlab.infra.redis_client import get_redis
from promptlab.providers import json_output
from promptlab.providers.base import (
    Attachment,
    BatchItem,
    BatchStatus,
    GenerationCall,
    Message,
    ProviderError,
    ProviderResult,
    Tool,
    ToolCall,
    Usage,
    error_for_status,
)
from promptlab.providers.messages_format import TOOL_PREFIX

_WORDS = (
    "prompt",
    "template",
    "queue",
    "worker",
    "answer",
    "token",
    "model",
    "cost",
    "cache",
    "retry",
    "durable",
    "cheap",
    "observable",
    "serverless",
    "lambda",
    "request",
    "latency",
    "budget",
    "job",
    "result",
    "version",
    "variable",
    "output",
    "input",
    "provider",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "on",
    "with",
    "that",
    "it",
    "as",
    "by",
    "this",
    "be",
    "are",
    "from",
    "at",
)


def _answer(call: GenerationCall) -> str:
    prompt = "\n".join(m.content for m in call.messages)
    seed = hashlib.sha256(f"{call.model}\x00{call.system or ''}\x00{prompt}".encode()).digest()
    length = 20 + seed[0] % 120
    words = [_WORDS[seed[(i % 31) + 1] * (i + 1) % len(_WORDS)] for i in range(length)]
    return f"Fake answer for: {prompt[:60].strip().rstrip('.!?')}. " + " ".join(words).capitalize() + "."


def _json_answer(call: GenerationCall) -> str:
    """JSON mode: a small value that satisfies the schema (any object for `json_object`). A number the schema
    bounds on both sides (a judge's `score` between 0 and 1) varies with the prompt, so a fake judge's scores
    differ from row to row instead of always being the lower bound."""
    assert call.response_format is not None
    if call.response_format["type"] == "json_object":
        return json.dumps({"answer": _answer(call)})
    schema = call.response_format["schema"]
    prompt = "\n".join(m.content for m in call.messages)
    return json.dumps(_spread(schema, json_output.example(schema), f"{call.system or ''}\x00{prompt}"))


def _spread(schema: JsonObject, value: Any, seed: str) -> Any:
    """`value` with each number bounded by `minimum` and `maximum` moved to a point between them (by `seed`)."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {k: _spread(props.get(k) or {}, v, f"{seed}\x00{k}") for k, v in value.items()}
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(value, int | float) and not isinstance(value, bool) and low is not None and high is not None:
        fraction = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        point = low + fraction * (high - low)
        return round(point) if schema.get("type") == "integer" else round(point, 2)
    return value


def _truncate_to_tokens(text: str, limit: int) -> str:
    kept: list[str] = []
    used = 0
    for match in TOKEN.finditer(text):
        cost = max(1, -(-len(match.group(0)) // 4))
        if used + cost > limit:
            return text[: match.start()].rstrip()
        used += cost
        kept.append(match.group(0))
    return text


def _log_answer(path: str, digest: str) -> None:
    """One line per answer (or call), appended atomically: an independent witness of what the provider saw."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{digest}\n".encode())
    finally:
        os.close(fd)


_minute_calls: dict[int, int] = {}


def _rate_limit_headers(rpm: int | None) -> dict[str, str]:
    """Anthropic's request-budget headers for a fixed per-minute window of `rpm` calls (counted in this
    process), as a real account reports them; none when `rpm` is unset."""
    if not rpm:
        return {}
    now = time.time()
    minute = int(now // 60)
    used = _minute_calls.get(minute, 0) + 1
    _minute_calls.clear()
    _minute_calls[minute] = used
    reset = datetime.fromtimestamp((minute + 1) * 60, tz=UTC).isoformat().replace("+00:00", "Z")
    return {
        "anthropic-ratelimit-requests-limit": str(rpm),
        "anthropic-ratelimit-requests-remaining": str(max(0, rpm - used)),
        "anthropic-ratelimit-requests-reset": reset,
    }


class FakeProvider:
    """Latency and faults come from settings (`PROMPTLAB_FAKE_*`)."""

    name = "fake"

    def generate(self, call: GenerationCall) -> ProviderResult:
        """One call, with the configured latency and faults."""
        settings = get_settings()
        if settings.fake_call_log:
            _log_answer(settings.fake_call_log, f"{time.time():.3f} {call.model}")
        if settings.fake_outage_file and os.path.exists(settings.fake_outage_file):
            raise error_for_status(529, "fake provider outage: overloaded")
        if settings.fake_latency_ms:
            time.sleep(min(settings.fake_latency_ms / 1000, call.timeout_seconds))
        if settings.fake_timeout_rate and random.random() < float(settings.fake_timeout_rate):
            time.sleep(min(0.05, call.timeout_seconds))
            raise ProviderError(code="timeout", message="fake provider timed out", retryable=True)
        statuses = settings.fake_fail_statuses
        if statuses and random.random() < float(settings.fake_fail_rate):
            status = random.choice(statuses)
            retry_after = settings.fake_retry_after_seconds if status == 429 else None
            raise error_for_status(status, f"fake provider told to fail with {status}", retry_after=retry_after)
        return self.answer(call)

    def answer(self, call: GenerationCall) -> ProviderResult:
        """The deterministic answer to a call (no latency, no faults). With tools (and a choice other than
        `none`), it calls one until a tool's result is the last turn; it names what it was shown."""
        settings = get_settings()
        wanted = _tool_wanted(call)
        if wanted is not None:
            return _tool_call_result(call, wanted)
        text = _json_answer(call) if call.response_format else _answer(call)
        shown = [a.media_type for m in call.messages for a in m.attachments]
        if shown:
            text = f"[shown: {', '.join(shown)}] {text}"
        finish = "end_turn"
        cuts = [text.find(stop) for stop in call.stop if stop in text]
        if cuts:  # like the real APIs: the answer ends before the first stop sequence
            text, finish = text[: min(cuts)], "stop_sequence"
        output_tokens = count_tokens(text)
        truncated = output_tokens > call.max_tokens
        if truncated:
            text = _truncate_to_tokens(text, call.max_tokens)
            output_tokens = count_tokens(text)
        input_tokens = prompt_tokens(call.system, [m.content for m in call.messages]) + ATTACHMENT_TOKENS * len(shown)
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        if settings.fake_answer_log:
            _log_answer(settings.fake_answer_log, digest)
        return ProviderResult(
            text=text,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            model=call.model,
            request_id=f"fake_req_{digest}",
            finish_reason="max_tokens" if truncated else finish,
            truncated=truncated,
            rate_limits=_rate_limit_headers(settings.fake_rate_limit_rpm),
        )


ATTACHMENT_TOKENS = 85  # what the fake counts for one image or document


def _tool_wanted(call: GenerationCall) -> Tool | None:
    """The tool the fake calls: the one `tool_choice` names, else the first; none once a tool answered."""
    if not call.tools or call.tool_choice == "none" or (call.messages and call.messages[-1].role == "tool"):
        return None
    named = (call.tool_choice or "").removeprefix(TOOL_PREFIX)
    return next((t for t in call.tools if t.name == named), call.tools[0])


def _tool_call_result(call: GenerationCall, tool: Tool) -> ProviderResult:
    arguments = json.dumps(json_output.example(tool.parameters))
    digest = hashlib.sha256(f"{call.model}\x00{tool.name}\x00{arguments}".encode()).hexdigest()[:24]
    return ProviderResult(
        text="",
        usage=Usage(input_tokens=prompt_tokens(call.system, [m.content for m in call.messages]), output_tokens=12),
        model=call.model,
        request_id=f"fake_req_{digest}",
        finish_reason="tool_use",
        tool_calls=(ToolCall(id=f"call_{digest[:16]}", name=tool.name, arguments=arguments),),
    )


def _call_to_json(call: GenerationCall) -> JsonObject:
    data = asdict(call)
    data["temperature"] = data["top_p"] = None  # the fake ignores them
    return data


def _call_from_json(data: JsonObject) -> GenerationCall:
    messages = [
        Message(
            role=m["role"], content=m["content"], tool_call_id=m.get("tool_call_id"),
            attachments=tuple(Attachment(**a) for a in m.get("attachments") or ()),
            tool_calls=tuple(ToolCall(**c) for c in m.get("tool_calls") or ()),
        )
        for m in data["messages"]
    ]  # fmt: skip
    return GenerationCall(
        **{**data, "messages": messages, "stop": tuple(data["stop"]), "tools": tuple(Tool(**t) for t in data["tools"])}
    )


class FakeBatches:
    """The fake provider's batch API, kept in Redis so every process sees it: a batch ends
    `PROMPTLAB_FAKE_BATCH_DELAY_SECONDS` after it is made; `PROMPTLAB_FAKE_BATCH_ERROR_RATE` of its requests
    error (alternately retryable and permanent); `PROMPTLAB_FAKE_BATCH_EXPIRE=true` makes every request expire."""

    name = "fake"

    def _key(self, batch_id: str) -> str:
        return f"{get_settings().redis_prefix}fakebatch:{batch_id}"

    def submit_batch(self, calls: list[tuple[str, GenerationCall]]) -> BatchStatus:
        batch_id = f"fakebatch_{hashlib.sha256(os.urandom(16)).hexdigest()[:20]}"
        state = {"created": time.time(), "requests": [[cid, _call_to_json(call)] for cid, call in calls]}
        get_redis().set(self._key(batch_id), json.dumps(state), ex=7 * 86_400)
        return BatchStatus(provider_batch_id=batch_id, ended=False, counts={"processing": len(calls)})

    def _state(self, batch_id: str) -> JsonObject:
        raw = get_redis().get(self._key(batch_id))
        if raw is None:
            raise ProviderError(code="not_found", message=f"no fake batch {batch_id}", retryable=False, status=404)
        state: JsonObject = json.loads(raw)
        return state

    def _items(self, state: JsonObject) -> list[BatchItem]:
        settings = get_settings()
        items = []
        for index, (custom_id, data) in enumerate(state["requests"]):
            digest = int(hashlib.sha256(custom_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            if settings.fake_batch_expire:
                items.append(BatchItem(custom_id=custom_id, kind="expired"))
            elif digest < float(settings.fake_batch_error_rate):
                retryable = index % 2 == 0
                error = error_for_status(500 if retryable else 400, "fake batch request failed")
                items.append(BatchItem(custom_id=custom_id, kind="errored", error=error))
            else:
                result = FakeProvider().answer(_call_from_json(data))
                items.append(BatchItem(custom_id=custom_id, kind="succeeded", result=result))
        return items

    def batch_status(self, provider_batch_id: str) -> BatchStatus:
        state = self._state(provider_batch_id)
        if time.time() - state["created"] < get_settings().fake_batch_delay_seconds:
            return BatchStatus(provider_batch_id, ended=False, counts={"processing": len(state["requests"])})
        counts = {"succeeded": 0, "errored": 0, "expired": 0, "canceled": 0}
        for item in self._items(state):
            counts[item.kind] += 1
        return BatchStatus(provider_batch_id, ended=True, counts=counts)

    def batch_results(self, provider_batch_id: str) -> Iterator[BatchItem]:
        yield from self._items(self._state(provider_batch_id))
