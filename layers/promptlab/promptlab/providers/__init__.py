"""LLM providers behind one `Provider` protocol; `get_provider(name)` builds each once per configuration.

Provider SDKs are imported only inside `get_provider`, i.e. only by the worker, only for the provider used.
"""

from __future__ import annotations

from functools import lru_cache
from typing import cast

from promptlab.core.errors import ConfigurationError, ValidationFailed
from promptlab.core.settings import get_settings
from promptlab.providers.base import BatchProvider, Provider

PROVIDERS = ("anthropic", "openai", "openai-compatible", "fake")


def is_configured(name: str) -> bool:
    """Whether this deployment can call the provider (a key, or a base URL for compatible servers)."""
    settings = get_settings()
    if name == "fake":
        return True
    if name == "anthropic":
        return bool(settings.anthropic_api_key or (settings.mode == "aws" and settings.anthropic_api_key_parameter))
    if name == "openai":
        return bool(settings.openai_api_key or (settings.mode == "aws" and settings.openai_api_key_parameter))
    if name == "openai-compatible":
        return bool(settings.openai_compatible_base_url)
    return False


def configured_models(name: str) -> tuple[str, ...]:
    """The models a provider is allowed to use here; empty means any."""
    settings = get_settings()
    return {
        "anthropic": settings.anthropic_models,
        "openai": settings.openai_models,
        "openai-compatible": settings.openai_compatible_models,
    }.get(name, ())


def check_available(name: str, model: str | None = None) -> None:
    """422 at submit time for a provider (or model) this deployment cannot call."""
    if not is_configured(name):
        available = ", ".join(p for p in PROVIDERS if is_configured(p))
        raise ValidationFailed.single(
            "provider", f"provider {name!r} is not configured in this deployment (no API key); available: {available}"
        )
    allowed = configured_models(name)
    if model is not None and allowed and model not in allowed:
        raise ValidationFailed.single(
            "model", f"model {model!r} is not enabled for {name}; enabled: {', '.join(allowed)}"
        )


def known_models(name: str) -> tuple[str, ...]:
    """What a 404 names: the configured models, else the priced ones."""
    from promptlab.providers.pricing import price_table

    return configured_models(name) or tuple(r["model"] for r in price_table() if r["provider"] == name)


def get_provider(name: str) -> Provider:
    """The adapter for `name`, with SDK retries off (the queue retries)."""
    from promptlab.infra.secrets import provider_key

    settings = get_settings()
    if name == "fake":
        return _build("fake", None, None)
    key = provider_key(name)
    if not key:
        raise ConfigurationError(f"provider {name!r} has no API key configured")
    base_url = {
        "anthropic": settings.anthropic_base_url,
        "openai": settings.openai_base_url,
        "openai-compatible": settings.openai_compatible_base_url,
    }.get(name)
    return _build(name, key, base_url)


@lru_cache(maxsize=16)
def _build(name: str, key: str | None, base_url: str | None) -> Provider:
    if name == "fake":
        from promptlab.providers.fake import FakeProvider

        return FakeProvider()
    if name == "anthropic":
        from promptlab.providers.anthropic_provider import AnthropicProvider

        return AnthropicProvider(api_key=key or "", base_url=base_url)
    from promptlab.providers.openai_provider import OpenAIProvider

    return OpenAIProvider(name=name, api_key=key or "", base_url=base_url)


BATCH_PROVIDERS = ("anthropic", "openai", "fake")


def get_batch_provider(name: str) -> BatchProvider:
    """The batch API of a provider (economy lane): Anthropic Message Batches, OpenAI Batch, or the fake's."""
    if name == "fake":
        from promptlab.providers.fake import FakeBatches

        return FakeBatches()
    if name not in BATCH_PROVIDERS:
        raise ConfigurationError(f"provider {name!r} has no batch API")
    return cast(BatchProvider, get_provider(name))
