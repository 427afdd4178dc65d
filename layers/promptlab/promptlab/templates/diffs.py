"""Two versions of a template compared: a line diff of the body and system prompt, and what else changed."""

from __future__ import annotations

import difflib

from promptlab.core.errors import NotFound
from promptlab.db import templates_repo
from promptlab.db.connection import connection
from promptlab.models.templates import TemplateDiff
from promptlab.templates.service import get_template_row, template_public


def _lines(text: str | None) -> list[str]:
    return (text or "").splitlines()


def diff_versions(*, tenant_id: str, template_id: str, a: int, b: int) -> TemplateDiff:
    """A line diff of two versions' bodies and system prompts, and their other changed settings."""
    with connection() as conn:
        old = templates_repo.template_at_version(conn, tenant_id=tenant_id, template_id=template_id, version=a)
        new = templates_repo.template_at_version(conn, tenant_id=tenant_id, template_id=template_id, version=b)
    for version, row in ((a, old), (b, new)):
        if row is None:
            get_template_row(tenant_id=tenant_id, template_id=template_id)  # 404 for an unknown template first
            raise NotFound(f"template {template_id!r} has no version {version}", details={"version": version})
    assert old is not None and new is not None

    def unified(field: str) -> list[str]:
        lines = difflib.unified_diff(
            _lines(getattr(old, field)), _lines(getattr(new, field)), f"v{a}/{field}", f"v{b}/{field}", lineterm=""
        )
        return list(lines)

    public_old = template_public(old).model_dump(mode="json", by_alias=True)
    public_new = template_public(new).model_dump(mode="json", by_alias=True)
    before = {f"defaults.{k}": v for k, v in public_old.pop("defaults").items()} | public_old
    after = {f"defaults.{k}": v for k, v in public_new.pop("defaults").items()} | public_new
    compared = ["variables", "variablesSchema", "cacheTtlSeconds", "cacheSystemPrompt", "name", "description"]
    compared += sorted(k for k in before.keys() | after.keys() if k.startswith("defaults."))
    changes = {
        field: {"from": before.get(field), "to": after.get(field)}
        for field in compared
        if before.get(field) != after.get(field)
    }
    return TemplateDiff(
        template_id=template_id, from_version=a, to_version=b, body=unified("body"), system=unified("system"),
        changes=changes,
    )  # fmt: skip
