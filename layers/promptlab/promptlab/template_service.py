"""Template use cases: create, read, list, new version, archive."""

from __future__ import annotations

import time
from typing import Any

from promptlab import ids
from promptlab.db import templates_repo
from promptlab.db.connection import connection
from promptlab.errors import Conflict, NotFound, PreconditionFailed
from promptlab.models import (
    TemplateCreate,
    TemplatePage,
    TemplatePublic,
    TemplateVersionList,
    TemplateVersionPublic,
)
from promptlab.pagination import decode_cursor, encode_cursor
from promptlab.settings import get_settings
from promptlab.templates import Variable, derive_variables


def _content(request: TemplateCreate) -> dict[str, Any]:
    declared = (
        [Variable(name=v.name, required=v.required, default=v.default) for v in request.variables]
        if request.variables is not None
        else None
    )
    variables = derive_variables(body=request.body, system=request.system, declared=declared)
    ttl = request.cache_ttl_seconds
    return {
        "name": request.name,
        "description": request.description,
        "body": request.body,
        "system": request.system,
        "variables": [{"name": v.name, "required": v.required, "default": v.default} for v in variables],
        "defaults": request.defaults.model_dump(mode="json", exclude_none=True),
        "cache_ttl_seconds": get_settings().default_cache_ttl_seconds if ttl is None else ttl,
        "cache_system": request.cache_system_prompt,
    }


def template_public(row: dict[str, Any]) -> TemplatePublic:
    """The wire view of a template row joined with its current version."""
    return TemplatePublic.model_validate(row)


def variables_of(version_row: dict[str, Any]) -> list[Variable]:
    """The stored variables of a version as domain objects."""
    return [Variable(name=v["name"], required=v["required"], default=v["default"]) for v in version_row["variables"]]


def create_template(*, tenant_id: str, request: TemplateCreate) -> TemplatePublic:
    """Create a template at version 1."""
    content = _content(request)
    with connection() as conn:
        row = templates_repo.insert_template(conn, tenant_id=tenant_id, template_id=ids.template_id(), content=content)
    return template_public(row)


def get_template_row(*, tenant_id: str, template_id: str) -> dict[str, Any]:
    """A template (archived ones too) or 404."""
    with connection() as conn:
        row = templates_repo.get_template(conn, tenant_id=tenant_id, template_id=template_id, include_archived=True)
    if row is None:
        raise NotFound(f"template {template_id!r} not found", details={"templateId": template_id})
    return row


_recent: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}


def cached_template(*, tenant_id: str, template_id: str) -> dict[str, Any] | None:
    """The template if this process holds a fresh copy, else None (never a database read)."""
    cached = _recent.get((tenant_id, template_id))
    if cached is not None and time.monotonic() - cached[0] < get_settings().template_cache_seconds:
        return cached[1]
    return None


def template_for_generation(*, tenant_id: str, template_id: str) -> dict[str, Any]:
    """The template as generation sees it, kept in process for `template_cache_seconds`.

    Saves a Postgres round trip on the hot path; another sandbox may use the previous version for up
    to that long after a `PUT` (the job records which version it used).
    """
    cached = cached_template(tenant_id=tenant_id, template_id=template_id)
    if cached is not None:
        return cached
    ttl, key, now = get_settings().template_cache_seconds, (tenant_id, template_id), time.monotonic()
    row = get_template_row(tenant_id=tenant_id, template_id=template_id)
    if ttl > 0:
        if len(_recent) > 10_000:
            _recent.clear()
        _recent[key] = (now, row)
    return row


def _forget(tenant_id: str, template_id: str) -> None:
    _recent.pop((tenant_id, template_id), None)


def get_template(*, tenant_id: str, template_id: str) -> TemplatePublic:
    """One template with its current version."""
    return template_public(get_template_row(tenant_id=tenant_id, template_id=template_id))


def list_templates(*, tenant_id: str, limit: int, cursor: str | None, q: str | None) -> TemplatePage:
    """A page of live templates, newest first."""
    after = decode_cursor(cursor)
    with connection() as conn:
        rows = templates_repo.list_templates(conn, tenant_id=tenant_id, limit=limit + 1, after_id=after, q=q)
    more = len(rows) > limit
    rows = rows[:limit]
    return TemplatePage(
        items=[template_public(r) for r in rows],
        next_cursor=encode_cursor(rows[-1]["id"]) if more else None,
    )


def _explain_miss(*, tenant_id: str, template_id: str, expected_version: int | None) -> Exception:
    row = get_template_row(tenant_id=tenant_id, template_id=template_id)
    if row["archived_at"] is not None:
        return Conflict(f"template {template_id!r} is archived", details={"templateId": template_id})
    return PreconditionFailed(
        f"template {template_id!r} is at version {row['version']}, not {expected_version}",
        details={"currentVersion": row["version"], "expectedVersion": expected_version},
    )


def update_template(
    *, tenant_id: str, template_id: str, request: TemplateCreate, expected_version: int | None
) -> TemplatePublic:
    """Replace the template with a new version; 412 when `expected_version` is stale."""
    content = _content(request)
    with connection() as conn:
        version = templates_repo.add_version(
            conn,
            tenant_id=tenant_id,
            template_id=template_id,
            expected_version=expected_version,
            content=content,
        )
    _forget(tenant_id, template_id)
    if version is None:
        raise _explain_miss(tenant_id=tenant_id, template_id=template_id, expected_version=expected_version)
    return get_template(tenant_id=tenant_id, template_id=template_id)


def archive_template(*, tenant_id: str, template_id: str, expected_version: int | None) -> None:
    """Archive a template: it stops taking generations; its jobs stay readable."""
    with connection() as conn:
        done = templates_repo.archive_template(
            conn, tenant_id=tenant_id, template_id=template_id, expected_version=expected_version
        )
    _forget(tenant_id, template_id)
    if not done:
        row = get_template_row(tenant_id=tenant_id, template_id=template_id)
        if row["archived_at"] is not None:
            return  # archiving twice is not an error
        raise _explain_miss(tenant_id=tenant_id, template_id=template_id, expected_version=expected_version)


def restore_template(*, tenant_id: str, template_id: str) -> TemplatePublic:
    """Un-archive a template (409 when a live template took its name meanwhile); restoring a live one is a no-op."""
    row = get_template_row(tenant_id=tenant_id, template_id=template_id)
    with connection() as conn:
        templates_repo.restore_template(conn, tenant_id=tenant_id, template_id=template_id, name=row["name"])
    _forget(tenant_id, template_id)
    return template_public(get_template_row(tenant_id=tenant_id, template_id=template_id))


def list_versions(*, tenant_id: str, template_id: str) -> TemplateVersionList:
    """Every version of a template, newest first."""
    get_template_row(tenant_id=tenant_id, template_id=template_id)
    with connection() as conn:
        rows = templates_repo.list_versions(conn, template_id=template_id)
    return TemplateVersionList(items=[TemplateVersionPublic.model_validate(r) for r in rows])
