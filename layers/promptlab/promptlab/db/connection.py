"""Postgres connections: small LIFO pools without background threads (one connection in Lambda).

Two kinds: durable ones (every commit waits for the WAL flush: accepted jobs must survive a crash) and
one for records that can be re-derived (cache-hit jobs), whose session skips that wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import DictRow, dict_row

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.settings import get_settings
from promptlab.infra.secrets import with_secret

Connection = psycopg.Connection[DictRow]
Row = DictRow  # a row as psycopg returns it, before a repository types it

_lock = threading.Lock()
_idle: dict[bool, list[Connection]] = {True: [], False: []}
_held = threading.local()  # how many connections this thread holds (a nested borrow passes the gate)
_gates: dict[int, threading.BoundedSemaphore] = {}
GATE_WAIT_SECONDS = 30.0
CONNECT_PAUSE_SECONDS = 0.5  # between tries to reach a database that is starting, resuming or failing over


def _gate() -> threading.BoundedSemaphore | None:
    """The bound on connections open at once in this process (`db_max_connections`; None: no bound)."""
    limit = get_settings().db_max_connections
    if limit <= 0:
        return None
    with _lock:
        return _gates.setdefault(limit, threading.BoundedSemaphore(limit))


def unreachable() -> DependencyUnavailable:
    """The error every database outage becomes (a 503 with `Retry-After` at the API)."""
    return DependencyUnavailable("the database is unreachable", details={"dependency": "postgres"})


def open_connection(url: str | None = None, *, durable: bool = True) -> Connection:
    """A new autocommit connection with timeouts and rows as dicts.

    A database that refuses connections (restarting, failing over, resuming from a pause) is tried again
    every half second for up to `db_connect_wait_seconds`, so a short outage is a slower answer rather than
    an error. Statements run often are prepared on the server unless `db_prepared_statements` is off (RDS
    Proxy would pin the connection, PgBouncer in transaction mode cannot keep them).
    """
    settings = get_settings()
    options = f"-c statement_timeout={settings.db_statement_timeout_ms} -c timezone=UTC"
    if not durable:
        options += " -c synchronous_commit=off"
    give_up = time.monotonic() + settings.db_connect_wait_seconds
    while True:
        try:
            return psycopg.connect(
                url or with_secret(settings.database_url, settings.database_secret_arn),
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=settings.db_connect_timeout_seconds,
                prepare_threshold=2 if settings.db_prepared_statements else None,
                options=options,
            )
        except psycopg.OperationalError as exc:
            if time.monotonic() + CONNECT_PAUSE_SECONDS > give_up:
                raise unreachable() from exc
            time.sleep(CONNECT_PAUSE_SECONDS)


def _release(conn: Connection, durable: bool) -> None:
    if conn.closed:
        return
    with _lock:
        if len(_idle[durable]) < get_settings().db_pool_size:
            _idle[durable].append(conn)
            return
    conn.close()


@contextmanager
def connection(*, durable: bool = True) -> Iterator[Connection]:
    """Borrow a pooled connection; a broken one is dropped, not returned. At most `db_max_connections` are
    borrowed at once in a process (a thread's nested borrow does not count again, so it cannot deadlock).

    `durable=False` is only for rows that may be lost in a database crash without losing anything a
    client was promised (a cache hit's job record: the answer it holds is cached elsewhere too).
    """
    depth = getattr(_held, "depth", 0)
    gate = _gate() if depth == 0 else None
    if gate is not None and not gate.acquire(timeout=GATE_WAIT_SECONDS):
        raise DependencyUnavailable("no database connection became free", details={"dependency": "postgres"})
    _held.depth = depth + 1
    try:
        with _lock:
            pool = _idle[durable]
            conn = pool.pop() if pool else None
        if conn is None or conn.closed:
            conn = open_connection(durable=durable)
        with _returned(conn, durable):
            yield conn
    finally:
        _held.depth = depth
        if gate is not None:
            gate.release()


@contextmanager
def _returned(conn: Connection, durable: bool) -> Iterator[None]:
    """Give the connection back to the pool when done; a broken one (or one mid-transaction) is closed."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        server_gone = conn.broken
        conn.close()
        if server_gone:  # the idle connections opened before are most likely gone with it: not handed out again
            close_all()
        raise unreachable() from exc
    except BaseException:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()
        raise
    finally:
        _release(conn, durable)


def close_all() -> None:
    """Close every idle connection (tests, shutdown)."""
    with _lock:
        for pool in _idle.values():
            while pool:
                pool.pop().close()
