"""Postgres connections: a small LIFO pool without background threads (one connection in Lambda)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import DictRow, dict_row

from promptlab.errors import DependencyUnavailable
from promptlab.settings import get_settings

Connection = psycopg.Connection[DictRow]

_lock = threading.Lock()
_idle: list[Connection] = []


def open_connection(url: str | None = None) -> Connection:
    """A new autocommit connection with timeouts, rows as dicts, no server-side prepares."""
    settings = get_settings()
    try:
        return psycopg.connect(
            url or settings.database_url,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=settings.db_connect_timeout_seconds,
            # RDS Proxy and PgBouncer in transaction mode cannot keep prepared statements.
            prepare_threshold=None,
            options=f"-c statement_timeout={settings.db_statement_timeout_ms} -c timezone=UTC",
        )
    except psycopg.OperationalError as exc:
        raise DependencyUnavailable("the database is unreachable", details={"dependency": "postgres"}) from exc


def _release(conn: Connection) -> None:
    if conn.closed:
        return
    with _lock:
        if len(_idle) < get_settings().db_pool_size:
            _idle.append(conn)
            return
    conn.close()


@contextmanager
def connection() -> Iterator[Connection]:
    """Borrow a pooled connection; a broken one is dropped, not returned."""
    with _lock:
        conn = _idle.pop() if _idle else None
    if conn is None or conn.closed:
        conn = open_connection()
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
        _release(conn)


def close_all() -> None:
    """Close every idle connection (tests, shutdown)."""
    with _lock:
        while _idle:
            _idle.pop().close()
