from collections.abc import Callable, Iterator
from typing import Any

import pytest

from promptlab.core.settings import get_settings
from promptlab.local.runner import LocalRunner
from tests.fakes.provider_server import ProviderServer
from tests.support import call_api, unique

SetEnv = Callable[..., None]


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
