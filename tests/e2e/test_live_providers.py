"""Live smoke tests: one tiny real call per provider whose key is set; skipped (with the reason) otherwise."""

import os

import pytest

from promptlab.providers.base import GenerationCall, Message
from promptlab.providers.pricing import cost_usd, unit_prices


def tiny_call(model: str) -> GenerationCall:
    return GenerationCall(
        model=model,
        system=None,
        messages=[Message(role="user", content="Reply with the single word: pong")],
        max_tokens=16,
        temperature=None,
        timeout_seconds=30,
    )


@pytest.mark.skipif(
    not os.environ.get("ANTHROPIC_API_KEY"), reason="ANTHROPIC_API_KEY is not set: no live Anthropic call"
)
def test_live_anthropic() -> None:
    from promptlab.providers.anthropic_provider import AnthropicProvider

    result = AnthropicProvider(api_key=os.environ["ANTHROPIC_API_KEY"], base_url=None).generate(
        tiny_call("claude-haiku-4-5")
    )
    prices = unit_prices("anthropic", result.model)
    assert result.text and result.usage.output_tokens > 0 and prices is not None
    assert cost_usd(result.usage, prices) > 0


@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="OPENAI_API_KEY is not set: no live OpenAI call")
def test_live_openai() -> None:
    from promptlab.providers.openai_provider import OpenAIProvider

    result = OpenAIProvider(name="openai", api_key=os.environ["OPENAI_API_KEY"], base_url=None).generate(
        tiny_call("gpt-4.1-mini")
    )
    prices = unit_prices("openai", result.model)
    assert result.text and result.usage.output_tokens > 0 and prices is not None


def _aws_credentials() -> str | None:
    """Why there is no live Bedrock call here, or None when real AWS credentials are at hand."""
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is None or credentials.access_key in {"local", "testing", "test"}:
        return "no AWS credentials: no live Bedrock call"
    if os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        return "AWS endpoints point at a stand-in: no live Bedrock call"
    return None


def test_live_bedrock() -> None:
    reason = _aws_credentials()
    if reason:
        pytest.skip(reason)
    from promptlab.providers.bedrock_provider import BedrockProvider

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    model = os.environ.get("PROMPTLAB_LIVE_BEDROCK_MODEL", "us.anthropic.claude-3-haiku-20240307-v1:0")
    result = BedrockProvider(region=region).generate(tiny_call(model))
    prices = unit_prices("bedrock", model)
    assert result.text and result.usage.output_tokens > 0 and prices is not None
    assert cost_usd(result.usage, prices) > 0
