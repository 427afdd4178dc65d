"""One typed settings object, read lazily from the environment."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from promptlab.core.errors import ConfigurationError
from promptlab.core.provider_settings import ProviderSettings

Mode = Literal["local", "aws"]


DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/promptlab"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(ProviderSettings):
    """Every knob PromptLab reads; `PROMPTLAB_*` unless a standard name exists."""

    model_config = SettingsConfigDict(env_prefix="PROMPTLAB_", extra="ignore", populate_by_name=True)

    mode: Mode = Field(default="local", description="`local` allows the offline fake provider by default.")
    database_url: str = Field(
        description="Postgres (15+).",
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "PROMPTLAB_DATABASE_URL"),
    )
    redis_url: str = Field(
        description="Redis (6.2+); `rediss://` for TLS, `unix://` for a socket.",
        default=DEFAULT_REDIS_URL,
        validation_alias=AliasChoices("REDIS_URL", "PROMPTLAB_REDIS_URL"),
    )
    auth: bool = Field(default=True, description="`off`: no API keys; every request acts for the default tenant.")
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300, description="How long a key lookup is reused.")
    cors_origins: str = Field(default="", description="Comma-separated browser origins allowed, or `*`.")
    database_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret with the database credentials (AWS; RDS JSON or a password)."
    )
    redis_secret_arn: str | None = Field(default=None, description="Secrets Manager secret with the Redis AUTH token.")
    redis_cluster: bool = Field(
        default=False, description="Redis is a cluster (ElastiCache Serverless): use the cluster client."
    )
    redis_prefix: str = Field(default="pl:", description="Prefix of every Redis key PromptLab writes.")
    aws_endpoint_url: str | None = Field(
        description="SQS endpoint (moto locally, AWS in Lambda): any SQS-compatible server.",
        default=None,
        validation_alias=AliasChoices("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"),
    )
    aws_region: str = Field(
        description="The region for SQS and the other AWS clients.",
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    job_queue_high_url: str = Field(
        description="The high-priority job queue (set by the template and the local runner).",
        default="",
        validation_alias="JOB_QUEUE_HIGH_URL",
    )
    job_queue_normal_url: str = Field(
        description="The normal-priority job queue (set by the template and the local runner).",
        default="",
        validation_alias="JOB_QUEUE_NORMAL_URL",
    )
    job_queue_low_url: str = Field(
        description="The low-priority job queue (set by the template and the local runner).",
        default="",
        validation_alias="JOB_QUEUE_LOW_URL",
    )
    job_dlq_url: str = Field(
        description="The job dead-letter queue (set by the template and the local runner).",
        default="",
        validation_alias="JOB_DLQ_URL",
    )
    intake_dlq_url: str = Field(
        description="The intake queue's dead-letter queue (set by the template and the local runner).",
        default="",
        validation_alias="INTAKE_DLQ_URL",
    )
    notify_queue_url: str = Field(
        description="The queue of webhook and tenant-event deliveries (set by the template).",
        default="",
        validation_alias="NOTIFY_QUEUE_URL",
    )
    event_bus_name: str = Field(default="", description="EventBridge bus for promptlab.job.* events; empty: none.")
    job_events_topic_arn: str = Field(default="", description="SNS topic for finished jobs; empty: none.")
    webhook_block_private: bool = Field(
        default=True, description="Refuse webhooks to non-public addresses (every mode; see webhook_allow_loopback)."
    )
    webhook_allow_loopback: bool = Field(
        default=False,
        description="Local mode only: webhooks may go to loopback addresses (a receiver on this machine).",
    )
    webhook_allowed_hosts: str = Field(default="", description="Comma-separated hosts webhooks may reach; empty: any.")
    webhook_timeout_seconds: float = Field(
        description="How long one webhook delivery may take.", default=5.0, gt=0, le=30
    )
    webhook_max_attempts: int = Field(
        description="Deliveries of one webhook before it is given up.", default=6, ge=1, le=20
    )
    webhook_backoff_seconds: tuple[int, ...] = Field(
        default=(5, 30, 120, 600, 1800), description="Delay before each webhook retry (JSON list; the last repeats)."
    )

    default_provider: str = Field(
        default="fake",
        description="Provider when neither request nor template names one (template parameter `DefaultProvider`).",
    )
    default_model: str | None = Field(
        default=None, description="Model for the default provider; empty: that provider's default."
    )
    default_max_tokens: int = Field(
        description="Output token cap when neither request nor template sets one.", default=1024, ge=1, le=64_000
    )
    max_attempts: int = Field(
        description="Provider attempts per job (template parameter `MaxAttempts`).", default=3, ge=1, le=20
    )
    retry_backoff_seconds: tuple[int, ...] = Field(
        default=(1, 3, 10),
        description="Delay before each retry (JSON list; the last repeats); a larger `retry-after` wins.",
    )
    store_backoff_seconds: tuple[int, ...] = Field(
        default=(1, 2, 4, 8, 15),
        min_length=1,
        description="When a record's store is down: how long its job waits before the next delivery, by times waited.",
    )
    store_write_wait_seconds: float = Field(
        default=45.0,
        ge=0,
        le=240,
        description="How long the worker keeps trying to save a provider's answer while the database is down.",
    )
    provider_timeout_seconds: float = Field(
        description="Base provider timeout; a job gets min(base + 0.05 s × maxTokens, 240 s).",
        default=30.0,
        gt=0,
        le=240,
    )
    lease_margin_seconds: float = Field(default=60.0, ge=0, le=600, description="Lease = provider timeout + this.")
    job_ttl_seconds: int = Field(description="A job's deadline (`expiresAt`).", default=86_400, ge=60)
    default_cache_ttl_seconds: int = Field(
        description="A template's result-cache TTL unless it sets one.", default=3600, ge=0
    )
    throttle: bool = Field(default=True, description="Flow control: adaptive concurrency per provider and model.")
    flow_initial_concurrency: int = Field(default=4, ge=1, le=1000, description="A route's first concurrency limit.")
    flow_max_concurrency: int = Field(default=64, ge=1, le=10_000, description="A route's limit grows to this.")
    flow_window_seconds: float = Field(default=5.0, gt=0, le=300, description="The failure rate is over this long.")
    flow_min_calls: int = Field(default=4, ge=1, description="Calls in the window before a failure rate counts.")
    flow_max_pause_seconds: float = Field(default=8.0, ge=1, le=900, description="Longest pause between probes.")
    flow_slot_wait_seconds: int = Field(
        default=1, ge=1, le=900, description="How long a job waits for a free slot; the longest retry-after sat out."
    )
    throttle_min_remaining: int = Field(default=0, ge=0, description="Pause a model when this few calls are left.")
    throttle_max_pause_seconds: float = Field(
        description="The longest wait a provider's reset header can cause.", default=60.0, gt=0, le=900
    )
    worker_concurrency: int = Field(default=10, ge=1, le=100, description="Records of a batch run at once.")
    db_pool_size: int = Field(default=1, ge=1, le=64, description="Connections per process (1 in Lambda).")
    db_max_connections: int = Field(
        default=0, ge=0, le=1000, description="Connections a process may hold at once (0: no bound; the worker: 2)."
    )
    db_connect_timeout_seconds: int = Field(description="Postgres connect timeout.", default=5, ge=1, le=60)
    db_connect_wait_seconds: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="How long a new connection waits for a database that is restarting, resuming or failing over"
        " (0: one try, as the CLI does; the template's functions and the local runner wait).",
    )
    db_statement_timeout_ms: int = Field(description="Postgres statement timeout.", default=10_000, ge=100)
    db_prepared_statements: bool = Field(
        default=True,
        description="Prepare statements used repeatedly on the server; turn off behind RDS Proxy or PgBouncer.",
    )
    redis_timeout_seconds: float = Field(description="Redis connect and read timeout.", default=0.25, gt=0, le=10)
    rate_limit_generate: int = Field(default=100, ge=0, description="Generate requests per client IP per window.")
    rate_limit_reads: int = Field(default=600, ge=0, description="Other requests per client IP per window.")
    rate_limit_window_seconds: int = Field(description="The rate limits' sliding window.", default=60, ge=1, le=3600)
    rate_limit_auth_failures: int = Field(
        default=20, ge=0, description="Unknown API keys an address may send per window before its lookups stop."
    )
    rate_limit_fail_open: bool = Field(default=False, description="Redis down: let requests through (uncounted).")
    cache_max_value_bytes: int = Field(default=262_144, ge=1024, description="Larger results are not cached in Redis.")
    template_cache_seconds: float = Field(default=1.0, ge=0, le=60, description="In-process template cache.")
    idempotency_ttl_seconds: int = Field(description="How long an `Idempotency-Key` replays.", default=86_400, ge=60)
    max_waits_per_key: int = Field(
        default=10, ge=1, le=1000, description="Long polls (`GET /jobs/{id}?wait=`) one API key may hold at once."
    )
    audit_retention_days: int = Field(
        default=400, ge=1, le=36_500, description="Audit log rows older than this are dropped by the sweeper."
    )
    chat_wait_seconds: float = Field(
        default=25, ge=0, le=900,
        description="How long `POST /v1/chat/completions` waits for its job before answering 504 with its id.",
    )  # fmt: skip
    max_chat_waits_per_key: int = Field(
        default=100, ge=1, le=10_000, description="Chat completions one API key may have waiting at once."
    )
    lost_message_seconds: int = Field(
        default=300, ge=5, le=86_400,
        description="A queued job whose message is this far past due is sent again by the sweeper (at most once"
        " per this period): a worker that died holding it would otherwise hide it for the visibility timeout.",
    )  # fmt: skip
    max_throttles: int = Field(
        default=20,
        ge=0,
        le=1000,
        description="Provider 429s a job may meet without spending an attempt (flow control, not failure).",
    )
    max_prompt_chars: int = Field(
        default=200_000, ge=1000, le=10_000_000, description="Longest rendered prompt (body, system, messages)."
    )

    economy_small_group_max_wait_seconds: int = Field(
        default=3600,
        ge=0,
        description="A group too small for its provider's batch minimum goes to the normal lane after this long.",
    )

    economy_max_jobs: int = Field(default=1000, ge=1, le=100_000, description="Jobs per provider batch at most.")
    dataset_uploads_bucket: str | None = Field(
        default=None, description="S3 bucket for dataset files larger than a request body (presigned PUTs)."
    )
    dataset_upload_max_bytes: int = Field(default=100_000_000, ge=1, description="The largest dataset file taken.")
    openai_file_max_bytes: int = Field(
        default=4_000_000, ge=1, le=20_000_000,
        description="The largest file `POST /v1/files` takes in its body: API Gateway passes the form to Lambda"
        " base64-encoded (a third larger), and a Lambda request is 6 MB at most.",
    )  # fmt: skip
    openai_upload_max_bytes: int = Field(
        default=200_000_000, ge=1, le=5_000_000_000,
        description="The largest batch file taken through `POST /v1/files/uploads` (a presigned PUT).",
    )  # fmt: skip
    openai_tenant_max_file_bytes: int = Field(
        default=10_000_000_000, ge=1, description="What one tenant's batch input files may hold at once, in bytes."
    )
    openai_file_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Batch input, output and error files are deleted this long after."
    )
    openai_batch_max_lines: int = Field(default=50_000, ge=1, le=50_000, description="Requests one batch takes.")
    dataset_max_versions: int = Field(default=100, ge=1, description="Versions one dataset keeps at most.")
    dataset_tenant_max_bytes: int = Field(
        default=1_000_000_000, ge=1, description="What a tenant's datasets hold at most, every version's rows counted."
    )
    max_running_experiments: int = Field(
        default=5, ge=1, le=1_000, description="Experiments a tenant may have running at once (429 beyond)."
    )
    experiment_window: int = Field(
        default=200, ge=1, le=10_000,
        description="How many of an experiment's jobs are on the queue or running at once; the next is sent as"
        " one ends, so a large experiment never floods the queue ahead of other traffic.",
    )  # fmt: skip
    economy_min_jobs: int = Field(default=100, ge=1, description="A batch goes out at this many waiting jobs...")
    economy_max_wait_seconds: int = Field(default=300, ge=0, description="...or when its oldest job waited this long.")

    @model_validator(mode="after")
    def _safe_in_aws(self) -> Settings:
        """AWS mode never runs open: no request without a key, no made-up answers, no webhook into the VPC."""
        if self.mode == "aws":
            if not self.auth:
                raise ValueError("PROMPTLAB_AUTH=off is refused in AWS mode: every request needs an API key there")
            if self.fake_enabled or self.default_provider == "fake":
                raise ValueError(
                    "the offline fake provider is refused in AWS mode (PROMPTLAB_FAKE_ENABLED or DefaultProvider=fake)"
                )
            if not self.webhook_block_private:
                raise ValueError(
                    "PROMPTLAB_WEBHOOK_BLOCK_PRIVATE=false is refused in AWS mode: a webhook could reach the VPC"
                    " (the instance metadata service, the database); list public hosts in"
                    " PROMPTLAB_WEBHOOK_ALLOWED_HOSTS instead"
                )
        return self

    @property
    def bedrock_models(self) -> tuple[str, ...]:
        """The model ids (or inference-profile ids) of `bedrock_model_arns`: what a job may ask Bedrock for."""
        arns = [arn.strip() for arn in self.bedrock_model_arns.split(",") if arn.strip()]
        return tuple(arn.rsplit("/", 1)[-1] for arn in arns)

    @property
    def bedrock_region_name(self) -> str:
        """Bedrock's region: the setting, else the function's."""
        import os

        return (
            self.bedrock_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )

    @property
    def fake_allowed(self) -> bool:
        """Whether the offline fake provider may answer here."""
        return self.fake_enabled if self.fake_enabled is not None else self.mode == "local"

    @property
    def fake_fail_statuses(self) -> tuple[int, ...]:
        """The statuses the fake provider fails with (one is picked at random per failing call)."""
        return tuple(int(s) for s in (self.fake_fail_status or "").split(",") if s.strip())

    def cors_allows(self, origin: str) -> bool:
        """Whether a browser page from `origin` may call the API."""
        allowed = {o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()}
        return "*" in allowed or origin.rstrip("/") in allowed

    def queue_url(self, priority: str) -> str:
        """The job queue URL for a priority (`high`, `normal`, `low`)."""
        urls = {
            "high": self.job_queue_high_url,
            "normal": self.job_queue_normal_url,
            "low": self.job_queue_low_url,
            "economy": self.job_queue_low_url,  # an economy job moved to the normal lane waits like `low`
        }
        url = urls.get(priority, "")
        if not url:
            raise ConfigurationError(f"no queue URL configured for priority {priority!r}")
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid PromptLab settings: {problems}") from exc
