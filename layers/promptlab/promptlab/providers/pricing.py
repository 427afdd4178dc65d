"""Model prices from one data file, and cost arithmetic in `Decimal`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

from promptlab.core.json_types import JsonObject
from promptlab.core.money import MILLION
from promptlab.providers.base import Usage


@dataclass(frozen=True)
class UnitPrices:
    """USD per million tokens for one model."""

    provider: str
    model: str
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal

    def snapshot(self) -> dict[str, str]:
        """The prices as stored on a job (strings, so they stay exact in JSON)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "unit": "USD per million tokens",
            "input": str(self.input),
            "output": str(self.output),
            "cacheRead": str(self.cache_read),
            "cacheWrite": str(self.cache_write),
        }


@cache
def _data() -> JsonObject:
    text = (resources.files("promptlab.providers") / "pricing.json").read_text(encoding="utf-8")
    data: JsonObject = json.loads(text)
    return data


def priced_default_model(provider: str) -> str | None:
    """The price table's default model of a provider (the registry's `default_model` asks here last)."""
    value = _data()["defaultModels"].get(provider)
    return str(value) if value else None


# A dated snapshot of a priced model: `claude-haiku-4-5-20251001`, `gpt-4o-2024-08-06`. Nothing else is
# stripped, so `gpt-5-pro` is never priced as `gpt-5`: other names must be in the table or its aliases.
# A Bedrock cross-region inference profile: the model id behind a geography prefix.
_INFERENCE_PROFILE = re.compile(r"^(?:us|eu|apac|us-gov|ca|jp|au)\.(?=[a-z0-9-]+\.)")
_SNAPSHOT = re.compile(r"^(?P<base>.+)-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


def unit_prices(provider: str, model: str, *, batch: bool = False) -> UnitPrices | None:
    """Prices for a model by its exact name, an alias of the table's, or a dated snapshot of either; None if
    unknown. `batch`: the provider's batch-API prices (about half), for the economy lane.
    """
    table: dict[str, dict[str, str]] = _data()["models"].get(provider, {})
    aliases: dict[str, str] = _data()["aliases"].get(provider, {})
    model = _INFERENCE_PROFILE.sub("", model)  # `us.anthropic.claude-…` costs what `anthropic.claude-…` does
    snapshot = _SNAPSHOT.match(model)
    names = [model, *([snapshot.group("base")] if snapshot else [])]
    name = next((aliases.get(n, n) for n in names if aliases.get(n, n) in table), None)
    if name is None:
        return None
    entry = table[name]
    inp = Decimal(entry["batchInput"] if batch and "batchInput" in entry else entry["input"])
    return UnitPrices(
        provider=provider,
        model=name,
        input=inp,
        output=Decimal(entry["batchOutput"] if batch and "batchOutput" in entry else entry["output"]),
        cache_read=Decimal(entry.get("cacheRead", entry["input"])),
        cache_write=Decimal(entry.get("cacheWrite5m", entry["input"])),
    )


def cost_usd(usage: Usage, prices: UnitPrices) -> Decimal:
    """Exact cost of one call; rounding is left to display."""
    return (
        usage.input_tokens * prices.input
        + usage.output_tokens * prices.output
        + usage.cache_read_tokens * prices.cache_read
        + usage.cache_write_tokens * prices.cache_write
    ) / MILLION


def price_table() -> list[dict[str, str]]:
    """Every priced model as rows, for `promptlab pricing`."""
    rows = []
    for provider, models in _data()["models"].items():
        for model, entry in models.items():
            rows.append({"provider": provider, "model": model, **entry})
    return rows
