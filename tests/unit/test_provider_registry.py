"""The provider registry is the one list of providers: the wire contract and the settings follow it."""

import re
from typing import get_args

import pytest

from promptlab.core.settings import get_settings
from promptlab.models.wire import Fallback, ProviderName
from promptlab.providers.registry import BATCH_PROVIDERS, PROVIDERS, check_available, is_configured
from tests.support import SetEnv


def test_the_wire_names_exactly_the_registered_providers() -> None:
    # Given the request model's provider names and its fallback pattern
    field = get_args(Fallback)[1]
    pattern = next(str(m.pattern) for m in field.metadata if hasattr(m, "pattern"))
    # Then both list exactly the providers the registry knows
    assert set(get_args(ProviderName)) == set(PROVIDERS)
    assert all(re.fullmatch(pattern, f"{name}:some-model") for name in PROVIDERS)


def test_only_providers_with_a_batch_api_take_the_economy_lane() -> None:
    assert BATCH_PROVIDERS == ("anthropic", "openai", "bedrock", "fake")


def test_a_compatible_server_is_configured_by_its_base_url_alone(set_env: SetEnv) -> None:
    # Given no key and no base URL, then a base URL but still no key
    set_env(PROMPTLAB_OPENAI_COMPATIBLE_BASE_URL="")
    get_settings.cache_clear()
    unconfigured = is_configured("openai-compatible")
    set_env(PROMPTLAB_OPENAI_COMPATIBLE_BASE_URL="http://127.0.0.1:11434/v1")
    get_settings.cache_clear()
    # Then only the second can be called
    assert (unconfigured, is_configured("openai-compatible")) == (False, True)


def test_a_provider_without_a_key_is_a_422_naming_the_ones_available(set_env: SetEnv) -> None:
    set_env(ANTHROPIC_API_KEY="")
    get_settings.cache_clear()
    with pytest.raises(Exception, match="not configured in this deployment.*available: .*fake"):
        check_available("anthropic")
