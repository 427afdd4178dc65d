"""An offline, deterministic provider: same input → same output, realistic token counts."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time

from promptlab import json_output
from promptlab.providers.base import GenerationCall, ProviderError, ProviderResult, Usage, error_for_status
from promptlab.settings import get_settings
from promptlab.tokens import TOKEN, count_tokens, prompt_tokens

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
    """JSON mode: a small value that satisfies the schema (any object for `json_object`)."""
    assert call.response_format is not None
    if call.response_format["type"] == "json_object":
        return json.dumps({"answer": _answer(call)})
    return json.dumps(json_output.example(call.response_format["schema"]))


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
    """One line per answer, appended atomically: an independent witness of calls that succeeded."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{digest}\n".encode())
    finally:
        os.close(fd)


class FakeProvider:
    """Latency and faults come from settings (`PROMPTLAB_FAKE_*`)."""

    name = "fake"

    def generate(self, call: GenerationCall) -> ProviderResult:
        settings = get_settings()
        if settings.fake_latency_ms:
            time.sleep(min(settings.fake_latency_ms / 1000, call.timeout_seconds))
        if settings.fake_timeout_rate and random.random() < float(settings.fake_timeout_rate):
            time.sleep(min(0.05, call.timeout_seconds))
            raise ProviderError(code="timeout", message="fake provider timed out", retryable=True)
        if settings.fake_fail_status and random.random() < float(settings.fake_fail_rate):
            raise error_for_status(
                settings.fake_fail_status, f"fake provider told to fail with {settings.fake_fail_status}"
            )
        text = _json_answer(call) if call.response_format else _answer(call)
        finish = "end_turn"
        cuts = [text.find(stop) for stop in call.stop if stop in text]
        if cuts:  # like the real APIs: the answer ends before the first stop sequence
            text, finish = text[: min(cuts)], "stop_sequence"
        output_tokens = count_tokens(text)
        truncated = output_tokens > call.max_tokens
        if truncated:
            text = _truncate_to_tokens(text, call.max_tokens)
            output_tokens = count_tokens(text)
        input_tokens = prompt_tokens(call.system, [m.content for m in call.messages])
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
        )
