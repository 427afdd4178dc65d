"""The settings of the providers PromptLab calls (keys, endpoints, models, Bedrock, the offline fake): a part
of `Settings`, read from the same environment."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProviderSettings(BaseSettings):
    """The providers' knobs; `Settings` adds the rest (read them through `get_settings()`)."""

    model_config = SettingsConfigDict(env_prefix="PROMPTLAB_", extra="ignore", populate_by_name=True)

    anthropic_api_key: str | None = Field(
        description="Anthropic's key (local mode; in AWS it comes from SSM).",
        default=None,
        validation_alias="ANTHROPIC_API_KEY",
        repr=False,
    )
    anthropic_base_url: str | None = Field(
        description="Point Anthropic's SDK at a gateway or a local stand-in.",
        default=None,
        validation_alias="ANTHROPIC_BASE_URL",
    )
    anthropic_api_key_parameter: str | None = Field(default=None, description="SSM name of the key (AWS mode).")
    anthropic_models: tuple[str, ...] = Field(default=(), description="Allowed models; empty: any.")
    anthropic_default_model: str | None = Field(default=None, description="Anthropic's model when none is named.")
    openai_api_key: str | None = Field(
        description="OpenAI's key (local mode; in AWS it comes from SSM).",
        default=None,
        validation_alias="OPENAI_API_KEY",
        repr=False,
    )
    openai_base_url: str | None = Field(
        description="Point OpenAI's SDK at a gateway or a local stand-in.",
        default=None,
        validation_alias="OPENAI_BASE_URL",
    )
    openai_api_key_parameter: str | None = Field(default=None, description="SSM name of the key (AWS mode).")
    openai_models: tuple[str, ...] = Field(default=(), description="Allowed models; empty: any.")
    openai_default_model: str | None = Field(default=None, description="OpenAI's model when none is named.")
    openai_compatible_base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:11434/v1")
    openai_compatible_api_key: str | None = Field(
        description="The key of the OpenAI-compatible server, if it wants one.", default=None, repr=False
    )
    openai_compatible_models: tuple[str, ...] = Field(default=(), description="Allowed models; empty: any.")
    openai_compatible_default_model: str | None = Field(
        default=None, description="The OpenAI-compatible server's model when none is named."
    )

    bedrock_enabled: bool = Field(
        default=False, description="Amazon Bedrock may be used (IAM credentials: no key; the template turns it on)."
    )
    bedrock_region: str | None = Field(default=None, description="Bedrock's region; default: the function's.")
    bedrock_model_arns: str = Field(
        default="",
        description="Comma-separated model and inference-profile ARNs the worker may invoke; their ids are the"
        " allowed models (empty: any the role may call).",
    )
    bedrock_default_model: str | None = Field(default=None, description="Bedrock's model when none is named.")
    bedrock_batch_bucket: str | None = Field(default=None, description="S3 bucket of batch inference files.")
    bedrock_batch_role_arn: str | None = Field(default=None, description="The role batch inference jobs run as.")
    bedrock_batch_min_records: int = Field(
        default=100, ge=1, description="Records Bedrock requires in one batch inference job (its quota)."
    )
    fake_enabled: bool | None = Field(
        default=None, description="The offline fake provider may be used (default: locally yes; never in AWS mode)."
    )
    fake_rate_limit_rpm: int | None = Field(
        default=None, ge=1, description="The fake reports a per-minute request budget in Anthropic's headers."
    )
    fake_latency_ms: int = Field(description="The fake provider's latency.", default=0, ge=0, le=600_000)
    fake_fail_status: str | None = Field(
        default=None, pattern=r"^\s*[45]\d\d(\s*,\s*[45]\d\d)*\s*$", description="A status, or several: `429,500,529`."
    )
    fake_retry_after_seconds: float = Field(default=1.0, ge=0, le=600, description="The fake's 429s ask this long.")
    fake_fail_rate: Decimal = Field(
        description="Share of fake calls that fail with `PROMPTLAB_FAKE_FAIL_STATUS`.", default=Decimal("1"), ge=0, le=1
    )
    fake_timeout_rate: Decimal = Field(
        description="Share of fake calls that time out (retryable).", default=Decimal("0"), ge=0, le=1
    )
    fake_batch_delay_seconds: float = Field(default=0, ge=0, description="Fake batches end this long after submit.")
    fake_batch_error_rate: Decimal = Field(
        description="Share of fake batch requests that end in error.", default=Decimal("0"), ge=0, le=1
    )
    fake_batch_expire: bool = Field(default=False, description="Fake batches expire instead of ending.")
    fake_outage_file: str | None = Field(
        default=None, description="While this file exists, every fake call fails with 529 (outage benchmarks)."
    )
    fake_call_log: str | None = Field(default=None, description="File the fake provider appends a line to per call.")
    fake_answer_log: str | None = Field(
        default=None, description="File the fake provider appends a line to per answer."
    )
