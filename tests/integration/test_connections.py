"""The worker's threads share a bounded number of Postgres connections (RDS connection budgets)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from promptlab.db.connection import connection
from promptlab.local.runner import LocalRunner
from tests.support import SetEnv


def test_threads_never_hold_more_connections_than_the_bound(runner: LocalRunner, set_env: SetEnv) -> None:
    # Given a bound of 2 connections and 8 threads that each borrow one (and, nested, a second)
    set_env(PROMPTLAB_DB_MAX_CONNECTIONS="2")
    lock, held, most = threading.Lock(), [0], [0]

    def borrow() -> int:
        with connection() as conn:
            with lock:
                held[0] += 1
                most[0] = max(most[0], held[0])
            with connection(durable=False) as nested:  # a nested borrow passes the gate: no deadlock
                nested.execute("SELECT 1")
            time.sleep(0.05)
            with lock:
                held[0] -= 1
            return int(conn.execute("SELECT 1 AS one").fetchone()["one"])  # type: ignore[index]

    # When they all run at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: borrow(), range(8)))
    # Then every one got its turn, never more than two at a time
    assert results == [1] * 8 and most[0] == 2
