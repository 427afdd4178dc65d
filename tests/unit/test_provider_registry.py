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


def test_each_provider_is_wired_where_the_contributor_guide_says() -> None:
    """docs/contributing.md ("Adding a provider") lists what a new provider needs beyond its adapter and its
    registry entry; this checks each of those places for every registered provider."""
    from pathlib import Path

    from promptlab.core.settings import Settings
    from promptlab.local.cfn import load_template
    from promptlab.providers.pricing import price_table, priced_default_model

    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "contributing.md").read_text(encoding="utf-8")
    assert "## Adding a provider" in guide
    template = load_template(root / "template.yaml")
    resources, parameters = template["Resources"], template["Parameters"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    callers = {"WorkerFunction", "EconomyFunction"}  # the only functions that call providers
    reads = {
        name: {str(p["SSMParameterReadPolicy"]["ParameterName"]["Ref"]) for p in r["Properties"].get("Policies", [])
               if isinstance(p, dict) and "SSMParameterReadPolicy" in p}
        for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"
    }  # fmt: skip
    priced = {row["provider"] for row in price_table()}
    problems: list[str] = []
    for name, spec in PROVIDERS.items():
        field = name.replace("-", "_")
        if spec.needs_key:
            if f"{field}_api_key_parameter" not in Settings.model_fields:
                problems.append(f"{name}: no setting {field}_api_key_parameter")
            env = f"PROMPTLAB_{field.upper()}_API_KEY_PARAMETER"
            sub = str(variables.get(env, {}).get("Fn::Sub", ""))
            parameter = re.fullmatch(r"/\$\{(\w+)\}", sub)
            if parameter is None or parameter.group(1) not in parameters:
                problems.append(f"{name}: Globals has no {env} naming a template parameter")
                continue
            readers = {function for function, names in reads.items() if parameter.group(1) in names}
            if readers != callers:
                problems.append(f"{name}: its key is read by {sorted(readers)}, not by {sorted(callers)}")
        if name not in priced and not spec.needs_base_url:
            problems.append(f"{name}: no prices in pricing.json")
        if spec.has_batch_api is False and name in BATCH_PROVIDERS:
            problems.append(f"{name}: listed as a batch provider without a batch API")
        if not spec.needs_base_url and priced_default_model(name) is None:
            problems.append(f"{name}: no default model in pricing.json")
    allowed = set(parameters["DefaultProvider"]["AllowedValues"])
    if not allowed <= set(PROVIDERS):
        problems.append(f"DefaultProvider allows unknown providers {sorted(allowed - set(PROVIDERS))}")
    assert problems == [], "see docs/contributing.md, 'Adding a provider'"
