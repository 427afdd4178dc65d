"""Postgres connections: small LIFO pools without background threads (one connection in Lambda).

Two kinds: durable ones (every commit waits for the WAL flush: accepted jobs must survive a crash) and
one for records that can be re-derived (cache-hit jobs), whose session skips that wait.
"""

from __future__ import annotations

import threading
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


def open_connection(url: str | None = None, *, durable: bool = True) -> Connection:
    """A new autocommit connection with timeouts and rows as dicts.

    Statements run often are prepared on the server unless `db_prepared_statements` is off (RDS Proxy
    would pin the connection, PgBouncer in transaction mode cannot keep them; DESIGN.md §9).
    """
    settings = get_settings()
    options = f"-c statement_timeout={settings.db_statement_timeout_ms} -c timezone=UTC"
    if not durable:
        options += " -c synchronous_commit=off"
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
        raise DependencyUnavailable("the database is unreachable", details={"dependency": "postgres"}) from exc


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
    """Borrow a pooled connection; a broken one is dropped, not returned.

    `durable=False` is only for rows that may be lost in a database crash without losing anything a
    client was promised (a cache hit's job record: the answer it holds is cached elsewhere too).
    """
    with _lock:
        pool = _idle[durable]
        conn = pool.pop() if pool else None
    if conn is None or conn.closed:
        conn = open_connection(durable=durable)
    try:
        yield conn
    except psycopg.OperationalError as exc:
        conn.close()
        raise DependencyUnavailable("the database is unreachable", details={"dependency": "postgres"}) from exc
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
