"""Operators' wire models: API keys managed over HTTPS, and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from promptlab.core.json_types import JsonObject
from promptlab.models.wire import Money, RequestModel, UtcDatetime, WireModel

Scope = Annotated[str, Field(pattern=r"^[a-z:]+$", max_length=32)]
DEFAULT_API_SCOPES = ["read", "generate"]


class KeyCreate(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=10)] = Field(
        default_factory=lambda: list(DEFAULT_API_SCOPES), description="Default: read and generate."
    )
    rpm_limit: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    monthly_budget_usd: Annotated[Money, Field(ge=0, le=1_000_000)] | None = Field(
        default=None, alias="monthlyBudgetUSD"
    )

    @field_validator("scopes")
    @classmethod
    def _known(cls, scopes: list[str]) -> list[str]:
        from promptlab.core.scopes import check_scopes

        return check_scopes(scopes)


class KeyUpdate(RequestModel):
    """Only the fields given change; `null` removes a limit or a budget."""

    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    rpm_limit: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    monthly_budget_usd: Annotated[Money, Field(ge=0, le=1_000_000)] | None = Field(
        default=None, alias="monthlyBudgetUSD"
    )


class KeyRotate(RequestModel):
    overlap_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] = Field(
        default=3_600, description="How long the old key keeps working (default an hour; 0: at once)."
    )


class KeyPublic(WireModel):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    scopes: list[str] | None = Field(description="null: every scope (keys made before scopes, or by the CLI).")
    rpm_limit: int | None
    monthly_budget_usd: Money | None = Field(alias="monthlyBudgetUSD")
    spent_usd: Money | None = Field(default=None, alias="spentUSD", description="This month.")
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = Field(description="Past: revoked; future: the end of a rotation's overlap.")


class KeyCreated(KeyPublic):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


class KeyPage(WireModel):
    items: list[KeyPublic]


class EventsWebhook(RequestModel):
    url: Annotated[str, Field(max_length=2_048, pattern=r"^https?://[^\s]+$")] | None = Field(
        description="Where this tenant's events (`template.label.moved`) are posted, signed as job webhooks are;"
        " null: nowhere."
    )


class AuditEntryPublic(WireModel):
    id: int
    at: UtcDatetime
    key_id: str | None
    key_name: str | None
    action: str
    target_type: str
    target_id: str
    before: JsonObject | None = None
    after: JsonObject | None = None
    request_id: str | None = None
    hash: str


class AuditPage(WireModel):
    items: list[AuditEntryPublic]
    next_cursor: str | None


def audit_public(entry: Any) -> AuditEntryPublic:
    return AuditEntryPublic.model_validate(entry, from_attributes=True)
