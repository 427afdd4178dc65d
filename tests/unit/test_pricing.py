from decimal import Decimal

from promptlab.core.money import money_str
from promptlab.providers.base import Usage
from promptlab.providers.pricing import cost_usd, price_table, priced_default_model, unit_prices


def test_design_example_costs_exactly_0_003951() -> None:
    prices = unit_prices("anthropic", "claude-haiku-4-5")
    assert prices is not None
    cost = cost_usd(Usage(input_tokens=36, output_tokens=783), prices)
    assert isinstance(cost, Decimal)
    assert money_str(cost) == "0.003951"


def test_cache_tokens_are_priced_separately() -> None:
    prices = unit_prices("anthropic", "claude-sonnet-4-5")
    assert prices is not None
    usage = Usage(input_tokens=1_000_000, output_tokens=0, cache_read_tokens=1_000_000, cache_write_tokens=1_000_000)
    assert cost_usd(usage, prices) == Decimal("3.00") + Decimal("0.30") + Decimal("3.75")


def test_dated_snapshots_use_their_family_price() -> None:
    prices = unit_prices("anthropic", "claude-haiku-4-5-20251001")
    assert prices is not None and prices.model == "claude-haiku-4-5"


def test_unknown_model_has_no_price() -> None:
    assert unit_prices("openai", "gpt-unknown") is None


def test_every_provider_has_a_default_model_and_the_table_lists_sources() -> None:
    assert priced_default_model("fake") == "fake-1"
    assert {row["provider"] for row in price_table()} >= {"anthropic", "openai", "fake"}


def test_money_is_written_without_exponent_or_trailing_zeros() -> None:
    assert money_str(Decimal("0.0039510000")) == "0.003951"
    assert money_str(Decimal("100")) == "100"
    assert money_str(Decimal("0E-10")) == "0"


def test_claude_haiku_3_hand_computed() -> None:
    prices = unit_prices("anthropic", "claude-3-haiku-20240307")
    assert prices is not None
    # 36 × $0.25/M + 783 × $1.25/M = $0.000009 + $0.00097875
    assert cost_usd(Usage(input_tokens=36, output_tokens=783), prices) == Decimal("0.00098775")


def test_a_longer_model_name_is_not_priced_as_its_prefix() -> None:
    # gpt-5-pro costs far more than gpt-5: pricing it as gpt-5 would let a budget be overspent
    assert unit_prices("openai", "gpt-5-pro") is None
    assert unit_prices("openai", "gpt-4o-mini-realtime") is None
    assert unit_prices("anthropic", "claude-haiku-4-5-turbo") is None
    # an alias of the table and a dated snapshot of it both are priced
    opus = unit_prices("anthropic", "claude-opus-4-20250514")
    assert opus is not None and opus.model == "claude-opus-4-0"
    dated = unit_prices("openai", "gpt-4o-2024-08-06")
    assert dated is not None and dated.model == "gpt-4o"
