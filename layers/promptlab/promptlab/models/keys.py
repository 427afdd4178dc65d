"""API keys and their monthly budgets, as the repositories return them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from promptlab.core.json_types import JsonObject


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A row of `api_keys` (never the key itself, only its hash and first characters)."""

    id: str
    tenant_id: str
    name: str
    key_hash: str
    prefix: str
    rpm_limit: int | None
    monthly_budget_usd: Decimal | None
    created_at: datetime
    revoked_at: datetime | None
    scopes: list[str] | None = None  # None: every scope

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ApiKey:
        """The key of a `SELECT * FROM api_keys` row."""
        return cls(**row)


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """What a key's budget holds for a month: spent (settled jobs) and reserved (jobs not yet ended)."""

    spent_usd: Decimal
    reserved_usd: Decimal


@dataclass(frozen=True, slots=True)
class KeyListing:
    """A key as `promptlab keys list` shows it: its limits and this month's budget use."""

    key: ApiKey
    use: BudgetUse

    def as_dict(self) -> JsonObject:
        """The listing's fields (never the key's hash)."""
        key = self.key
        return {
            "id": key.id,
            "name": key.name,
            "tenant_id": key.tenant_id,
            "prefix": key.prefix,
            "rpm_limit": key.rpm_limit,
            "monthly_budget_usd": key.monthly_budget_usd,
            "spent_usd": self.use.spent_usd,
            "reserved_usd": self.use.reserved_usd,
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        }
