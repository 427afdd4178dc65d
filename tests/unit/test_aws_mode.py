"""AWS mode never starts open: no auth-off, no fake provider, no webhooks into the VPC."""

from __future__ import annotations

import pytest

from promptlab.core.errors import ConfigurationError
from promptlab.core.settings import get_settings
from promptlab.providers.registry import is_configured
from tests.support import SetEnv


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PROMPTLAB_AUTH": "off"}, "PROMPTLAB_AUTH=off is refused"),
        ({"PROMPTLAB_FAKE_ENABLED": "true"}, "fake provider is refused"),
        ({"PROMPTLAB_DEFAULT_PROVIDER": "fake"}, "fake provider is refused"),
        (
            {"PROMPTLAB_WEBHOOK_BLOCK_PRIVATE": "false", "PROMPTLAB_DEFAULT_PROVIDER": "anthropic"},
            "PROMPTLAB_WEBHOOK_BLOCK_PRIVATE=false is refused",
        ),
    ],
)
def test_aws_mode_refuses_to_start_open(set_env: SetEnv, env: dict[str, str], says: str) -> None:
    set_env(PROMPTLAB_MODE="aws", **env)
    with pytest.raises(ConfigurationError, match=says):
        get_settings()


def test_the_fake_provider_answers_locally_only(set_env: SetEnv) -> None:
    set_env(PROMPTLAB_MODE="local")
    assert is_configured("fake")
    set_env(PROMPTLAB_MODE="aws", PROMPTLAB_DEFAULT_PROVIDER="anthropic")
    assert not is_configured("fake")
    set_env(PROMPTLAB_MODE="local", PROMPTLAB_FAKE_ENABLED="false")
    assert not is_configured("fake")
