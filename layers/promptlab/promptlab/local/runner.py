"""`promptlab local`: the whole stack from `template.yaml` on one machine, without Docker."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.core.json_types import LambdaEvent
from promptlab.core.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL
from promptlab.local import state
from promptlab.local.gateway import GatewayServer
from promptlab.local.lambdas import LocalFunction
from promptlab.local.pollers import ScheduleTimer, SqsPoller
from promptlab.local.services import (
    Embedded,
    MotoSqs,
    ServiceNotAnswering,
    ensure_database,
    postgres_answers,
    redis_answers,
    with_database,
)
from promptlab.local.stack import Stack, build_stack

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# Variables the runner decides; the template's values for them describe AWS, not this machine.
RUNNER_OWNED = ("DATABASE_URL", "REDIS_URL", "PROMPTLAB_MODE", "AWS_ENDPOINT_URL")

# Where a laptop differs from AWS on purpose (your environment still wins): the economy lane holds a group
# 10 s, not 300 s, and runs every 5 s, so an economy job ends in seconds instead of looking stuck for minutes;
# an experiment keeps 40 jobs on the queue, not 200, because moto's receive costs the square of a queue's
# depth (SQS's does not).
LOCAL_ENVIRONMENT = {"PROMPTLAB_ECONOMY_MAX_WAIT_SECONDS": "10", "PROMPTLAB_EXPERIMENT_WINDOW": "40"}
LOCAL_SCHEDULE_SECONDS = {"EconomyFunction": 5.0}


def _reset_clients() -> None:
    """Forget clients built from an earlier environment (settings are read lazily)."""
    from promptlab.core.settings import get_settings
    from promptlab.db.connection import close_all
    from promptlab.infra.job_queue import get_queue
    from promptlab.infra.publishers import get_publishers
    from promptlab.infra.redis_client import get_redis

    close_all()
    for cached in (get_settings, get_queue, get_redis, get_publishers):
        cached.cache_clear()


@dataclass
class LocalRunner:
    template: Path
    host: str = "127.0.0.1"
    port: int = 3000
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("PROMPTLAB_DATA_DIR", "~/.promptlab")).expanduser()
    )
    schedule_speedup: float = 1.0
    max_pollers_per_mapping: int = 8
    serve_http: bool = True
    run_pollers: bool = True
    database_name: str | None = None
    sqs_port: int | None = None
    http_workers: int = 1
    gateway_only: bool = False
    report_invocations: bool = False  # print Lambda's REPORT line after every invocation
    database_url: str = ""
    redis_url: str = ""
    sqs_endpoint: str = ""
    stack: Stack | None = None
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dev_key: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _server: GatewayServer | None = None
    _wrote_state: bool = False
    _moto: MotoSqs | None = None
    _embedded: Embedded | None = None
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _backing_services(self) -> None:
        self._embedded = Embedded(self.data_dir)
        explicit_db = os.environ.get("DATABASE_URL")
        db = explicit_db or DEFAULT_DATABASE_URL
        if postgres_answers(db):
            self.notes.append(f"Postgres: {db.split('@')[-1]}")
        elif explicit_db:  # a URL the user chose is never silently swapped for the embedded one
            raise ServiceNotAnswering("DATABASE_URL", explicit_db)
        else:
            db = self._embedded.postgres_url()
            self.notes.append(f"Postgres: embedded PostgreSQL 16, data in {self.data_dir / 'postgres'}")
        if self.database_name:
            db = with_database(db, self.database_name)
        ensure_database(db)
        explicit_redis = os.environ.get("REDIS_URL")
        redis_url = explicit_redis or DEFAULT_REDIS_URL
        if redis_answers(redis_url):
            self.notes.append(f"Redis: {redis_url.split('@')[-1]}")
        elif explicit_redis:
            raise ServiceNotAnswering("REDIS_URL", explicit_redis)
        else:
            redis_url = self._embedded.redis_url()
            self.notes.append(f"Redis: embedded Redis 6.2, data in {self.data_dir / 'redis.db'}")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL") or ""
        if not endpoint:
            self._moto = (MotoSqs(port=self.sqs_port) if self.sqs_port else MotoSqs()).start()
            endpoint = self._moto.endpoint
            for key, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")):
                os.environ.setdefault(key, value)
            self.notes.append(f"SQS: moto server at {endpoint}")
        else:
            self.notes.append(f"SQS: {endpoint}")
        self.database_url, self.redis_url, self.sqs_endpoint = db, redis_url, endpoint

    def sqs_client(self) -> SQSClient:
        import boto3

        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return boto3.client("sqs", region_name=region, endpoint_url=self.sqs_endpoint)

    def _create_buckets(self, names: list[str], *, region: str) -> None:
        """The template's S3 buckets, at the same endpoint as the queues (moto serves both)."""
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        s3 = boto3.client("s3", region_name=region, endpoint_url=self.sqs_endpoint)
        for name in names:
            try:
                s3.create_bucket(Bucket=name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    self.notes.append(f"S3: bucket {name} not made ({exc})")
            except BotoCoreError as exc:
                self.notes.append(f"S3: bucket {name} not made ({exc})")

    def start(self) -> LocalRunner:
        """Bring up services, queues, functions, the HTTP gateway, pollers and schedules."""
        from promptlab.db.migrate import migrate

        if self.gateway_only:
            # A helper gateway process: the parent runner made the services, queues and environment.
            self.database_url, self.redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
            self.sqs_endpoint = os.environ["AWS_ENDPOINT_URL"]
        else:
            self._backing_services()
        sqs = self.sqs_client()
        # Locally the data stores are this machine's (or embedded): never the ones the stack would create.
        overrides = {"DefaultProvider": "fake", "DataStores": "existing", **self.parameter_overrides}
        overrides.update(DatabaseUrl=self.database_url, RedisUrl=self.redis_url)
        self.stack = build_stack(self.template, sqs=sqs, region=sqs.meta.region_name, parameter_overrides=overrides)
        if not self.gateway_only:
            self._create_buckets(self.stack.buckets, region=sqs.meta.region_name)
        # One process hosts every function here, so the worker's connection bound must not hold the rest back,
        # and the API's wait for a restarting database (the worker's is shorter) applies to all of them.
        process_wide = {
            "PROMPTLAB_DB_POOL_SIZE": os.environ.get("PROMPTLAB_DB_POOL_SIZE", "16"),
            "PROMPTLAB_DB_MAX_CONNECTIONS": os.environ.get("PROMPTLAB_DB_MAX_CONNECTIONS", "0"),
            "PROMPTLAB_DB_CONNECT_WAIT_SECONDS": os.environ.get("PROMPTLAB_DB_CONNECT_WAIT_SECONDS", "20"),
        }
        chosen = set(os.environ)
        for key, value in self.stack.environment().items():
            if key not in chosen or key.startswith("JOB_"):
                os.environ[key] = value
        for key, value in LOCAL_ENVIRONMENT.items():
            if key not in chosen:
                os.environ[key] = value
        os.environ.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            AWS_ENDPOINT_URL=self.sqs_endpoint,
            PROMPTLAB_MODE="local",
            **process_wide,
        )
        # EMF metrics and X-Ray are for AWS; set these to "false" to see them locally.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        _reset_clients()
        if not self.gateway_only:
            migrate(self.database_url)
            self._development_key()
            self._providers()
        self.functions = {
            lid: LocalFunction(spec, self.stack.region, report=self.report_invocations)
            for lid, spec in self.stack.functions.items()
        }
        if self.serve_http:
            shared = self.http_workers > 1 or self.gateway_only
            self._server = GatewayServer((self.host, self.port), self.stack, self.invoke, share_port=shared)
            self.port = self._server.server_address[1]
            self._spawn(threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True))
            if not self.gateway_only:
                for _ in range(self.http_workers - 1):
                    self._children.append(self._start_gateway_process())
                # Only a stack that serves, once it does: `promptlab invoke` or a second `./dev up` that could not
                # bind never points `promptlab dlq …` at endpoints that are gone.
                self._write_state()
        if self.run_pollers and not self.gateway_only:
            self._start_pollers()
        return self

    def _start_pollers(self) -> None:
        """Each enabled SQS mapping's pollers (up to its maximum concurrency) and each schedule's timer."""
        assert self.stack is not None
        for mapping in self.stack.mappings:
            if not mapping.enabled:
                continue
            for index in range(self.pollers_for(mapping.maximum_concurrency)):
                self._spawn(
                    SqsPoller(
                        mapping=mapping, sqs=self.sqs_client(), invoke=self.invoke,
                        region=self.stack.region, stop=self._stop, index=index,
                    )
                )  # fmt: skip
        for schedule in self.stack.schedules:
            self._spawn(
                ScheduleTimer(
                    schedule=schedule, invoke=self.invoke, region=self.stack.region,
                    stop=self._stop, speedup=self.schedule_speedup,
                    at_most_seconds=LOCAL_SCHEDULE_SECONDS.get(schedule.function),
                )
            )  # fmt: skip

    def _development_key(self) -> None:
        """Auth is on locally too: keep a development key for the default tenant (printed at start)."""
        from promptlab.core.settings import get_settings
        from promptlab.tenancy import auth

        if not get_settings().auth:
            self.notes.append(
                "!!! AUTH IS OFF (PROMPTLAB_AUTH=off): no API key is checked; anyone who can reach this port"
                " acts for the default tenant. Never run it like this where others can connect. !!!"
            )
            return
        path = self.data_dir / "dev-api-key"
        saved = path.read_text().strip() if path.exists() else None
        self.dev_key, made = auth.development_key(saved)
        self.data_dir.mkdir(parents=True, exist_ok=True)  # a fresh machine has no ~/.promptlab yet
        path.write_text(self.dev_key + "\n")
        path.chmod(0o600)
        state = f"made now, kept in {path}" if made else f"kept in {path}"
        self.notes.append(f"API key (development, default tenant; {state}): {self.dev_key}")

    def _providers(self) -> None:
        """Which providers this stack can call, and the Bedrock models it reaches (a one-line note each)."""
        from promptlab.core.settings import get_settings
        from promptlab.providers.registry import PROVIDERS, is_configured

        self.notes.append("Providers: " + ", ".join(name for name in PROVIDERS if is_configured(name)))
        settings = get_settings()
        if not settings.bedrock_enabled:
            return
        from promptlab.providers.bedrock_provider import reachable_models

        region = settings.bedrock_region_name
        try:
            models = reachable_models(region)
        except Exception as exc:  # any failure is a note here: the stack still serves every other provider
            self.notes.append(f"Bedrock ({region}): not reachable ({type(exc).__name__}: {str(exc)[:120]})")
            return
        shown = ", ".join(models[:8]) + (f" and {len(models) - 8} more" if len(models) > 8 else "")
        self.notes.append(f"Bedrock ({region}): {len(models)} models reachable: {shown}")

    @property
    def state_file(self) -> Path:
        """Where the latest running stack leaves its endpoints (see `local/state.py`)."""
        return state.latest(self.data_dir)

    def _write_state(self) -> None:
        state.write(self.data_dir, port=self.port, url=self.url)
        self._wrote_state = True

    def pollers_for(self, maximum_concurrency: int) -> int:
        """Pollers for a mapping: its MaximumConcurrency scaled down (÷2.5, 1 to 8), so ratios hold on a laptop."""
        return max(1, min(self.max_pollers_per_mapping, math.ceil(maximum_concurrency / 2.5)))

    def _start_gateway_process(self) -> subprocess.Popen[bytes]:
        """Another process serving HTTP on the same port (Python threads share one GIL; processes do not)."""
        command = [sys.executable, "-m", "promptlab.cli", "local", "--gateway-only"]
        command += ["--host", self.host, "--port", str(self.port), "--template", str(self.template)]
        if not self.report_invocations:
            command.append("--no-report")
        return subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.DEVNULL)

    def _spawn(self, thread: threading.Thread) -> None:
        thread.start()
        self._threads.append(thread)

    def invoke(self, logical_id: str, event: LambdaEvent) -> Any:
        """Invoke one function of the template with an event."""
        if logical_id not in self.functions:
            raise KeyError(f"no function {logical_id!r} in the template; known: {sorted(self.functions)}")
        return self.functions[logical_id].invoke(event)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop every thread and service this runner started."""
        self._stop.set()
        for child in self._children:
            child.terminate()
        for child in self._children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._wrote_state:
            state.forget(self.data_dir, port=self.port)
        for thread in self._threads:
            thread.join(timeout=5)
        _reset_clients()
        if self._moto is not None:
            self._moto.stop()
        if self._embedded is not None:
            self._embedded.stop()

    def __enter__(self) -> LocalRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
