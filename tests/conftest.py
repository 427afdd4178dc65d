"""Session fixtures: the template's stack on real Postgres, Redis and moto SQS, in a fresh database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptlab.core.settings import get_settings
from promptlab.db.connection import close_all
from promptlab.local.runner import LocalRunner
from promptlab.local.services import drop_database
from tests.support import ROOT, TEST_RUN, SetEnv, clear_throttles, purge_queues, redis_prefix


@pytest.fixture(scope="session", autouse=True)
def no_redis_keys_left_behind() -> Iterator[None]:
    """When the session ends, every Redis key of this run is removed (a run leaves nothing behind)."""
    yield
    import redis

    from promptlab.core.settings import DEFAULT_REDIS_URL

    try:
        client = redis.Redis.from_url(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL, socket_connect_timeout=2)
        batch = list(client.scan_iter(match=f"*:{TEST_RUN}:*", count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
    except (redis.RedisError, OSError):
        pass  # an embedded Redis went away with its stack, and its keys with it


@pytest.fixture(scope="session", autouse=True)
def experiment_hooks() -> None:
    """What the worker, economy and sweeper handlers register at start, for tests that call their use cases
    directly (the experiments above jobs hear of jobs ending and sweeps)."""
    from promptlab.experiments.runs import register_hooks

    register_hooks()


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRunner]:
    """The template's functions and queues, handlers invoked in process (no HTTP, no background pollers)."""
    suffix = uuid.uuid4().hex[:12]
    os.environ["PROMPTLAB_REDIS_PREFIX"] = redis_prefix("test")
    # The session's tests share one database, and many leave queued jobs whose messages they purged on
    # purpose: a sweep must not send those again. test_sweeper checks the lost-message rule with its own bound.
    os.environ["PROMPTLAB_LOST_MESSAGE_SECONDS"] = "86400"
    stack = LocalRunner(
        template=ROOT / "template.yaml",
        serve_http=False,
        run_pollers=False,
        database_name=f"promptlab_test_{suffix}",
        # A small redrive count (still above the 3 attempts) so a poison message reaches the DLQ quickly.
        parameter_overrides={"MaxReceiveCount": "4"},
        data_dir=Path(os.environ.get("PROMPTLAB_TEST_DATA_DIR") or tmp_path_factory.mktemp("embedded")),
    )
    stack.start()
    try:
        yield stack
    finally:
        close_all()
        drop_database(stack.database_url)
        stack.stop()


@pytest.fixture
def clean_queues(runner: LocalRunner) -> LocalRunner:
    """The stack with every queue emptied and no provider pause left over from an earlier test."""
    purge_queues(runner)
    clear_throttles()
    return runner


@pytest.fixture
def set_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetEnv]:
    """Change settings for one test (they are read lazily, so the cache is dropped around it)."""

    def apply(**values: str) -> None:
        """Set each variable; an empty value removes it."""
        for key, value in values.items():
            if value:
                monkeypatch.setenv(key, value)
            else:
                monkeypatch.delenv(key, raising=False)
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
