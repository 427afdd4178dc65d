"""Money is `Decimal`; this is its one wire format."""

from __future__ import annotations

from decimal import Decimal

MILLION = Decimal(1_000_000)


def money_str(value: Decimal) -> str:
    """`Decimal('0.0039510000')` → `'0.003951'`: exact, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", ""} else text
