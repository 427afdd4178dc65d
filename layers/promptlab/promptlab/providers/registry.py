"""The one list of providers: each one's adapter, settings, key, batch API and default model.

Everything that depends on which provider a job uses asks this module; nothing else branches on a
provider's name. Adapters (and so their SDKs) are imported only when a provider is first used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from promptlab.core.errors import ConfigurationError, ValidationFailed
from promptlab.core.settings import Settings, get_settings
from promptlab.infra.secrets import secret
from promptlab.providers.base import BatchProvider, Provider


@dataclass(frozen=True)
class ProviderSettings:
    """What the deployment says about one provider."""

    api_key: str | None = None
    api_key_parameter: str | None = None  # SSM name of the key (AWS mode)
    base_url: str | None = None
    models: tuple[str, ...] = ()  # allowed models; empty: any
    default_model: str | None = None
    region: str | None = None  # AWS providers (Bedrock): where to call


Build = Callable[[str, ProviderSettings], Provider]  # (api key, the provider's settings) → adapter


def _anthropic(key: str, own: ProviderSettings) -> Provider:
    from promptlab.providers.anthropic_provider import AnthropicProvider

    return AnthropicProvider(api_key=key, base_url=own.base_url)


def _openai(key: str, own: ProviderSettings) -> Provider:
    from promptlab.providers.openai_provider import OpenAIProvider

    return OpenAIProvider(name="openai", api_key=key, base_url=own.base_url)


def _openai_compatible(key: str, own: ProviderSettings) -> Provider:
    from promptlab.providers.openai_provider import OpenAIProvider

    return OpenAIProvider(name="openai-compatible", api_key=key, base_url=own.base_url)


def _bedrock(_key: str, own: ProviderSettings) -> Provider:
    from promptlab.providers.bedrock_provider import BedrockProvider

    return BedrockProvider(region=own.region or get_settings().bedrock_region_name, known_models=own.models)


def _bedrock_batches() -> BatchProvider:
    from promptlab.providers.bedrock_provider import BedrockBatches, BedrockProvider

    settings = get_settings()
    provider = cast(BedrockProvider, get_provider("bedrock"))
    return BedrockBatches(
        provider=provider, bucket=settings.bedrock_batch_bucket, role_arn=settings.bedrock_batch_role_arn
    )


def _fake(_key: str, _own: ProviderSettings) -> Provider:
    from promptlab.providers.fake import FakeProvider

    return FakeProvider()


def _fake_batches() -> BatchProvider:
    from promptlab.providers.fake import FakeBatches

    return FakeBatches()


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: how its adapter is built and how this deployment configures it."""

    name: str
    build: Build
    settings: Callable[[Settings], ProviderSettings]
    has_batch_api: bool = False
    build_batches: Callable[[], BatchProvider] | None = None  # when the batch API is not the adapter itself
    needs_key: bool = True
    needs_base_url: bool = False
    key_placeholder: str = ""  # sent as the key when none is set (a compatible server may take any)
    enabled: Callable[[Settings], bool] | None = None  # a switch of its own (providers without a key)
    min_batch_jobs: Callable[[Settings], int] = lambda _: 1  # the fewest requests its batch API takes
    why_not: str = "no API key"  # what a 422 says when it is not configured
    batch_models: Callable[[str], bool] = lambda _: True  # which models its batch API takes
    # Where the images and PDFs it is shown may come from: data (base64), image-url, pdf-url, s3.
    attachments: frozenset[str] = frozenset({"data"})

    def configured(self, settings: Settings) -> bool:
        """Whether this deployment can call the provider."""
        if self.enabled is not None and not self.enabled(settings):
            return False
        own = self.settings(settings)
        has_key = bool(own.api_key or (settings.mode == "aws" and own.api_key_parameter))
        return (has_key or not self.needs_key) and (bool(own.base_url) or not self.needs_base_url)


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="anthropic",
            build=_anthropic,
            attachments=frozenset({"data", "image-url", "pdf-url"}),
            settings=lambda s: ProviderSettings(
                s.anthropic_api_key,
                s.anthropic_api_key_parameter,
                s.anthropic_base_url,
                s.anthropic_models,
                s.anthropic_default_model,
            ),  # fmt: skip
            has_batch_api=True,
        ),
        ProviderSpec(
            name="openai",
            build=_openai,
            attachments=frozenset({"data", "image-url"}),
            settings=lambda s: ProviderSettings(
                s.openai_api_key, s.openai_api_key_parameter, s.openai_base_url, s.openai_models, s.openai_default_model
            ),
            has_batch_api=True,
        ),
        ProviderSpec(
            name="openai-compatible",
            build=_openai_compatible,
            attachments=frozenset({"data", "image-url"}),
            settings=lambda s: ProviderSettings(
                s.openai_compatible_api_key,
                None,
                s.openai_compatible_base_url,
                s.openai_compatible_models,
                s.openai_compatible_default_model,
            ),  # fmt: skip
            needs_key=False,
            needs_base_url=True,
            key_placeholder="not-needed",
        ),
        ProviderSpec(
            name="bedrock",
            build=_bedrock,
            attachments=frozenset({"data", "s3"}),
            settings=lambda s: ProviderSettings(
                models=s.bedrock_models, default_model=s.bedrock_default_model, region=s.bedrock_region_name
            ),
            has_batch_api=True,
            build_batches=_bedrock_batches,
            needs_key=False,
            enabled=lambda s: s.bedrock_enabled,
            min_batch_jobs=lambda s: s.bedrock_batch_min_records,
            batch_models=lambda model: "anthropic." in model,  # batch records are in the model's own format
            why_not="PROMPTLAB_BEDROCK_ENABLED is off (set the template's BedrockModelArns)",
        ),
        ProviderSpec(
            name="fake",
            build=_fake,
            attachments=frozenset({"data", "image-url", "pdf-url", "s3"}),
            settings=lambda _: ProviderSettings(),
            has_batch_api=True,
            build_batches=_fake_batches,
            needs_key=False,
            enabled=lambda s: s.fake_allowed,
            why_not="the fake is off here",
        ),
    )
}
BATCH_PROVIDERS = tuple(name for name, spec in PROVIDERS.items() if spec.has_batch_api)


def spec_of(name: str) -> ProviderSpec:
    """The provider's entry; `ConfigurationError` for a name this build does not know."""
    spec = PROVIDERS.get(name)
    if spec is None:
        raise ConfigurationError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")
    return spec


def is_configured(name: str) -> bool:
    """Whether this deployment can call the provider."""
    spec = PROVIDERS.get(name)
    return spec is not None and spec.configured(get_settings())


def configured_models(name: str) -> tuple[str, ...]:
    """The models a provider is allowed to use here; empty means any."""
    return spec_of(name).settings(get_settings()).models if name in PROVIDERS else ()


def default_model(name: str) -> str | None:
    """The model a provider uses when neither request nor template names one: the setting, else the price
    table's default."""
    from promptlab.providers.pricing import priced_default_model

    configured = spec_of(name).settings(get_settings()).default_model if name in PROVIDERS else None
    return configured or priced_default_model(name)


def check_available(name: str, model: str | None = None) -> None:
    """422 at submit time for a provider (or model) this deployment cannot call."""
    if not is_configured(name):
        available = ", ".join(p for p in PROVIDERS if is_configured(p))
        raise ValidationFailed.single(
            "provider",
            f"provider {name!r} is not configured in this deployment"
            f" ({PROVIDERS[name].why_not if name in PROVIDERS else 'unknown'}); available: {available}",
        )
    allowed = configured_models(name)
    if model is not None and allowed and model not in allowed:
        raise ValidationFailed.single(
            "model", f"model {model!r} is not enabled for {name}; enabled: {', '.join(allowed)}"
        )


def attachment_refusal(name: str, media_type: str, url: str | None) -> str | None:
    """Why provider `name` cannot be shown this attachment, or None when it can."""
    kind = (
        "data"
        if url is None
        else "s3"
        if url.startswith("s3://")
        else "pdf-url"
        if "pdf" in media_type
        else "image-url"
    )
    spec = PROVIDERS.get(name)
    if spec is not None and kind not in spec.attachments:
        takes = ", ".join(sorted(spec.attachments))
        return f"{name} does not take this attachment ({kind}); it takes: {takes}"
    if kind == "s3":
        settings = get_settings()
        buckets = {b for b in (settings.dataset_uploads_bucket, settings.bedrock_batch_bucket) if b}
        if (url or "").removeprefix("s3://").partition("/")[0] not in buckets:
            named = ", ".join(sorted(buckets)) or "none configured"
            return f"an s3:// attachment must be in this stack's bucket ({named})"
    return None


def known_models(name: str) -> tuple[str, ...]:
    """What a 404 names: the configured models, else the priced ones."""
    from promptlab.providers.pricing import price_table

    return configured_models(name) or tuple(r["model"] for r in price_table() if r["provider"] == name)


def api_key(name: str) -> str | None:
    """A provider's API key: the environment locally, SSM Parameter Store (cached 5 min) in AWS."""
    spec = spec_of(name)
    own = spec.settings(get_settings())
    return secret(own.api_key, own.api_key_parameter) or spec.key_placeholder or None


def get_provider(name: str) -> Provider:
    """The adapter for `name`, built once per configuration, with SDK retries off (the queue retries)."""
    spec = spec_of(name)
    key = api_key(name)
    if spec.needs_key and not key:
        raise ConfigurationError(f"provider {name!r} has no API key configured")
    return _build(name, key, spec.settings(get_settings()))


def get_batch_provider(name: str) -> BatchProvider:
    """The batch API of a provider (economy lane): Anthropic Message Batches, OpenAI Batch, or the fake's."""
    spec = spec_of(name)
    if not spec.has_batch_api:
        raise ConfigurationError(f"provider {name!r} has no batch API")
    if spec.build_batches is not None:
        return spec.build_batches()
    return cast(BatchProvider, get_provider(name))


def batch_takes(name: str, model: str) -> bool:
    """Whether the provider's batch API takes this model (Bedrock's here: Anthropic models)."""
    return spec_of(name).batch_models(model)


def min_batch_jobs(name: str) -> int:
    """The fewest requests the provider's batch API takes in one batch (Bedrock: 100)."""
    return spec_of(name).min_batch_jobs(get_settings())


@lru_cache(maxsize=16)
def _build(name: str, key: str | None, own: ProviderSettings) -> Provider:
    return spec_of(name).build(key or "", own)
