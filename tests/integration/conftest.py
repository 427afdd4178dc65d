import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from promptlab.core.observability import logger
from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, call_api, rows, unique
from tests.support.provider_server import ProviderServer


@pytest.fixture
def template(runner: LocalRunner) -> dict[str, Any]:
    """A fresh one-variable template."""
    answer = call_api(runner, "POST", "/templates", body={"name": unique("gen"), "body": "Explain {{ topic }}."})
    assert answer.status == 201
    made: dict[str, Any] = answer.body
    return made


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    """A local stand-in for the Anthropic and OpenAI HTTP APIs."""
    running = ProviderServer().start()
    yield running
    running.stop()


@pytest.fixture
def economy_now(set_env: SetEnv) -> SetEnv:
    """Batches go out at once (no minimum size, no waiting), and batches opened by other tests are closed."""
    rows("UPDATE provider_batches SET status = 'ended' WHERE status IN ('submitting', 'in_progress') RETURNING id")
    rows("UPDATE jobs SET status = 'cancelled' WHERE lane = 'economy' AND status = 'queued' RETURNING id")
    set_env(PROMPTLAB_ECONOMY_MIN_JOBS="1", PROMPTLAB_ECONOMY_MAX_WAIT_SECONDS="0")
    return set_env


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every line the shared logger writes while the test runs."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    root = logging.getLogger()
    root.addHandler(handler)
    yield buffer
    logger._logger.removeHandler(handler)
    root.removeHandler(handler)
