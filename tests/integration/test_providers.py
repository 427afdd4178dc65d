"""The Anthropic and OpenAI SDK providers against a local server speaking their real wire formats."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from promptlab.local.runner import LocalRunner
from promptlab.local.services import free_port
from promptlab.providers.anthropic_provider import AnthropicProvider
from promptlab.providers.base import GenerationCall, Message, Provider, ProviderError
from promptlab.providers.openai_provider import OpenAIProvider
from tests.support import SetEnv, call_api, drain_queues, job_through_worker, unique
from tests.support.provider_server import ProviderServer

CLASSIFICATION = [
    (400, "invalid_request", False), (401, "authentication_failed", False), (403, "permission_denied", False),
    (404, "model_not_found", False), (408, "timeout", True), (409, "conflict", True),
    (413, "request_too_large", False), (422, "invalid_request", False), (429, "rate_limited", True),
    (500, "provider_unavailable", True), (502, "provider_unavailable", True), (503, "provider_unavailable", True),
    (504, "provider_unavailable", True), (529, "overloaded", True),
]  # fmt: skip


def make(kind: str, base: str) -> Provider:
    if kind == "anthropic":
        return AnthropicProvider(api_key="test-key", base_url=base)
    return OpenAIProvider(name="openai", api_key="test-key", base_url=base + "/v1")


def call(model: str, *, timeout: float = 5, cache_system: bool = False) -> GenerationCall:
    return GenerationCall(
        model=model,
        system="You are terse.",
        messages=[Message(role="user", content="Explain TypeScript")],
        max_tokens=1000,
        temperature=Decimal("0.2"),
        timeout_seconds=timeout,
        cache_system=cache_system,
    )


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize(("status", "code", "retryable"), CLASSIFICATION)
def test_each_error_status_is_classified(
    server: ProviderServer, kind: str, status: int, code: str, retryable: bool
) -> None:
    before = len(server.requests)
    with pytest.raises(ProviderError) as caught:
        make(kind, server.url).generate(call(f"status-{status}"))
    error = caught.value
    assert (error.status, error.code, error.retryable) == (status, code, retryable)
    assert len(server.requests) == before + 1  # the SDK does not retry: the queue does


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_a_429_keeps_retry_after_and_the_rate_limit_headers(server: ProviderServer, kind: str) -> None:
    with pytest.raises(ProviderError) as caught:
        make(kind, server.url).generate(call("status-429"))
    assert caught.value.retry_after == 7
    assert any("remaining" in name for name in caught.value.extra)


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_a_missing_model_names_the_configured_ones(server: ProviderServer, kind: str, set_env: SetEnv) -> None:
    set_env(**{f"PROMPTLAB_{kind.upper()}_MODELS": '["model-a", "model-b"]'})
    with pytest.raises(ProviderError) as caught:
        make(kind, server.url).generate(call("status-404"))
    assert "configured models: model-a, model-b" in caught.value.message and not caught.value.retryable


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_timeouts_connection_errors_and_broken_answers_are_retryable(server: ProviderServer, kind: str) -> None:
    for provider, model, code in [
        (make(kind, server.url), "slow", "timeout"),
        (make(kind, f"http://127.0.0.1:{free_port()}"), "any", "connection_error"),
        (make(kind, server.url), "malformed", "bad_response"),
    ]:
        with pytest.raises(ProviderError) as caught:
            provider.generate(call(model, timeout=0.5))
        assert (caught.value.code, caught.value.retryable) == (code, True)


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_refusals_are_permanent_and_cut_answers_are_flagged(server: ProviderServer, kind: str) -> None:
    with pytest.raises(ProviderError) as caught:
        make(kind, server.url).generate(call("refuse"))
    assert (caught.value.code, caught.value.retryable) == ("content_refused", False)
    assert make(kind, server.url).generate(call("truncated")).truncated


def test_anthropic_answer_usage_and_prompt_caching(server: ProviderServer) -> None:
    result = make("anthropic", server.url).generate(call("claude-haiku-4-5", cache_system=True))
    sent = server.requests[-1]["body"]
    assert sent["system"] == [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    assert sent["max_tokens"] == 1000 and sent["temperature"] == 0.2
    headers = {k.lower(): v for k, v in server.requests[-1]["headers"].items()}
    assert "test-key" in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert result.text.startswith("Claude says: Explain TypeScript")
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cache_write_tokens) == (36, 783, 1000)
    assert result.request_id and result.request_id.startswith("req_") and result.finish_reason == "end_turn"


def test_openai_answer_usage_with_cached_prompt_tokens(server: ProviderServer) -> None:
    result = make("openai", server.url).generate(call("gpt-4o-mini"))
    sent = server.requests[-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert sent["max_completion_tokens"] == 1000
    assert (result.usage.input_tokens, result.usage.cache_read_tokens, result.usage.output_tokens) == (36, 1000, 783)
    compatible = OpenAIProvider(name="openai-compatible", api_key="x", base_url=server.url + "/v1")
    compatible.generate(call("llama3"))
    assert server.requests[-1]["body"]["max_tokens"] == 1000


def test_a_job_completes_on_anthropic_with_exact_cost(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    set_env(ANTHROPIC_API_KEY="test-key", ANTHROPIC_BASE_URL=server.url)
    job = job_through_worker(
        clean_queues,
        {
            "template": {"body": "Explain {{ x }}"},
            "input": "TypeScript",
            "provider": "anthropic",
            "model": "claude-haiku-4-5",
        },
    )
    assert job["status"] == "completed" and job["inputTokens"] == 36 and job["outputTokens"] == 783
    assert job["estimatedCostUSD"] == "0.003951"  # the API contract's example
    cached = job_through_worker(
        clean_queues,
        {
            "template": {"body": "Explain {{ x }}", "system": "Long shared instructions", "cacheSystemPrompt": True},
            "input": "TypeScript",
            "provider": "anthropic",
            "model": "claude-haiku-4-5",
        },
    )
    assert cached["cacheWriteTokens"] == 1000
    assert Decimal(cached["estimatedCostUSD"]) == Decimal("0.003951") + Decimal("0.00125")  # 1,000 × $1.25/M


def test_provider_errors_end_in_the_right_job_state(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    set_env(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=server.url + "/v1",
        PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]",
        PROMPTLAB_THROTTLE="false",
    )
    base = {"template": {"body": "{{ x }}"}, "input": "y", "provider": "openai"}
    overloaded = job_through_worker(clean_queues, {**base, "model": "status-503"})
    assert overloaded["status"] == "failed" and overloaded["attempts"] == 3
    assert overloaded["error"]["code"] == "provider_unavailable"
    missing = job_through_worker(clean_queues, {**base, "model": "status-404"})
    assert missing["status"] == "failed" and missing["attempts"] == 1
    assert "configured models" in missing["error"]["message"]
    cut = job_through_worker(clean_queues, {**base, "model": "truncated"})
    assert cut["status"] == "completed" and cut["truncated"] is True
    assert "the answer was cut at maxTokens (finish reason length)" in cut["warnings"]


def test_an_unconfigured_provider_is_refused_at_submit(runner: LocalRunner, set_env: SetEnv) -> None:
    set_env(ANTHROPIC_API_KEY="")
    made = call_api(runner, "POST", "/templates", body={"name": unique("nokey"), "body": "{{ x }}"}).body
    answer = call_api(
        runner, "POST", "/generate", body={"templateId": made["id"], "input": "y", "provider": "anthropic"}
    )
    assert answer.status == 422
    assert "not configured" in answer.body["error"]["details"]["fields"][0]["message"]


def test_a_fallback_answers_when_the_first_model_fails_for_good(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    set_env(
        ANTHROPIC_API_KEY="test-key",
        ANTHROPIC_BASE_URL=server.url,
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=server.url + "/v1",
        PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]",
        PROMPTLAB_THROTTLE="false",
    )
    missing_model = job_through_worker(
        clean_queues,
        {
            "template": {"body": "{{ x }}"},
            "input": "y",
            "provider": "anthropic",
            "model": "status-404",
            "fallbacks": ["openai:gpt-4o-mini"],
        },
    )
    assert missing_model["status"] == "completed" and missing_model["answeredBy"] == "openai/gpt-4o-mini"
    assert missing_model["attempts"] == 2 and missing_model["provider"] == "anthropic"
    # Priced at the model that answered: 36 input, 1,000 cached and 783 output tokens on gpt-4o-mini.
    assert (
        Decimal(missing_model["estimatedCostUSD"])
        == (36 * Decimal("0.15") + 1000 * Decimal("0.075") + 783 * Decimal("0.60")) / 1_000_000
    )
    overloaded = job_through_worker(
        clean_queues,
        {
            "template": {
                "body": "{{ x }}",
                "defaults": {"fallbacks": ["openai:status-503", "anthropic:claude-haiku-4-5"]},
            },
            "input": "y",
            "provider": "anthropic",
            "model": "status-529",
        },
    )
    assert overloaded["status"] == "completed" and overloaded["answeredBy"] == "anthropic/claude-haiku-4-5"
    assert overloaded["attempts"] == 7  # 3 on the first model, 3 on the second, 1 that answered
    bad = call_api(
        clean_queues,
        "POST",
        "/generate",
        body={"templateId": "tpl_x", "input": "y", "fallbacks": ["nowhere:model"]},
    )
    assert bad.status == 422 and bad.body["error"]["details"]["fields"][0]["field"].startswith("fallbacks")


@pytest.mark.parametrize(("status", "code", "retryable"), CLASSIFICATION)
def test_every_error_class_ends_in_the_right_job_state(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv, status: int, code: str, retryable: bool
) -> None:
    set_env(
        ANTHROPIC_API_KEY="test-key",
        ANTHROPIC_BASE_URL=server.url,
        PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]",
        PROMPTLAB_THROTTLE="false",
    )
    job = job_through_worker(
        clean_queues,
        {"template": {"body": "{{ x }}"}, "input": "y", "provider": "anthropic", "model": f"status-{status}"},
    )
    if status == 429:  # the provider's retry-after (7 s) outweighs the 0 s backoff: the job waits for it
        assert (job["status"], job["attempts"], job["error"]["code"]) == ("queued", 1, code)
        assert job["error"]["retryAfterSeconds"] == 7 and job["error"]["rateLimit"]
        # Leave nothing behind: cancel it, and let the worker acknowledge its message when it shows again.
        assert call_api(clean_queues, "POST", f"/jobs/{job['id']}/cancel").status == 200
        time.sleep(7.2)
        assert drain_queues(clean_queues) == 1
        return
    assert job["status"] == "failed" and job["error"]["code"] == code
    assert job["attempts"] == (3 if retryable else 1)
    assert ("attempts exhausted" in job["error"]["message"]) == retryable


def test_an_unpriced_model_completes_with_a_null_cost_and_a_warning(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_OPENAI_COMPATIBLE_BASE_URL=server.url + "/v1")
    job = job_through_worker(
        clean_queues,
        {"template": {"body": "{{ x }}"}, "input": "y", "provider": "openai-compatible", "model": "llama3"},
    )
    assert job["status"] == "completed" and job["estimatedCostUSD"] is None
    assert job["warnings"] == ["no price known for openai-compatible/llama3: the cost is unknown"]
