"""Template use cases: create, read, list, new version, archive."""

from __future__ import annotations

import time

from promptlab.core import ids
from promptlab.core.errors import Conflict, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from promptlab.core.pagination import decode_cursor, encode_cursor
from promptlab.core.settings import get_settings
from promptlab.db import templates_repo
from promptlab.db.connection import connection
from promptlab.models.templates import (
    Template,
    TemplateContent,
    TemplateCreate,
    TemplateLabels,
    TemplatePage,
    TemplatePublic,
    TemplateVersion,
    TemplateVersionList,
    TemplateVersionPublic,
)
from promptlab.templates.rendering import Variable, check_rendered_size, derive_variables
from promptlab.templates.variable_schema import variables_from_schema

RESERVED_PREFIX = "promptlab:"
CHAT_TEMPLATE = "promptlab:chat"  # what a chat that names no template runs on: no body, no system prompt


def _content(request: TemplateCreate) -> TemplateContent:
    if request.name.startswith(RESERVED_PREFIX):
        raise ValidationFailed.single("name", f"names starting with {RESERVED_PREFIX!r} are PromptLab's own")
    declared = (
        [Variable(name=v.name, required=v.required, default=v.default) for v in request.variables]
        if request.variables is not None
        else None
    )
    variables = derive_variables(body=request.body, system=request.system, declared=declared)
    if request.variables_schema is not None:
        if request.variables is not None:
            raise ValidationFailed.single("variablesSchema", "give either `variables` or `variablesSchema`, not both")
        names = [v.name for v in variables]
        variables = variables_from_schema(request.variables_schema, names)
    settings = get_settings()
    defaults = {v.name: v.default for v in variables if v.default is not None}
    check_rendered_size(
        [request.system, request.body],
        defaults,
        limit=settings.max_prompt_chars,
        field="variablesSchema" if request.variables_schema is not None else "variables",
        hint="the body, system prompt and variable defaults alone exceed it",
    )
    ttl = request.cache_ttl_seconds
    return TemplateContent(
        name=request.name,
        description=request.description,
        body=request.body,
        system=request.system,
        variables=[{"name": v.name, "required": v.required, "default": v.default} for v in variables],
        variables_schema=request.variables_schema,
        defaults=request.defaults.model_dump(mode="json", exclude_none=True),
        cache_ttl_seconds=settings.default_cache_ttl_seconds if ttl is None else ttl,
        cache_system=request.cache_system_prompt,
    )


def template_public(template: Template) -> TemplatePublic:
    """The wire view of a template joined with one of its versions."""
    return TemplatePublic.model_validate(template, from_attributes=True)


def variables_of(version: Template | TemplateVersion) -> list[Variable]:
    """The stored variables of a version as domain objects."""
    return [Variable(name=v["name"], required=v["required"], default=v["default"]) for v in version.variables]


def create_template(*, tenant_id: str, request: TemplateCreate) -> TemplatePublic:
    """Create a template at version 1."""
    content = _content(request)
    with connection() as conn:
        row = templates_repo.insert_template(conn, tenant_id=tenant_id, template_id=ids.template_id(), content=content)
    return template_public(row)


def template_by_name(*, tenant_id: str, name: str) -> Template | None:
    """The live template with this name, or None."""
    with connection() as conn:
        return templates_repo.template_named(conn, tenant_id=tenant_id, name=name)


def chat_template(*, tenant_id: str) -> Template:
    """The tenant's template for chats that name none (made on first use): the chat's own turns are the whole
    prompt, and its jobs are ordinary jobs of this template (usage, limits, cache and budgets apply)."""
    cached = cached_template(tenant_id=tenant_id, template_id=CHAT_TEMPLATE)
    if cached is not None:
        return cached
    found = template_by_name(tenant_id=tenant_id, name=CHAT_TEMPLATE)
    if found is None:
        content = TemplateContent(
            name=CHAT_TEMPLATE, description="Chats sent to /v1/chat/completions without a template.", body="",
            system=None, variables=[], variables_schema=None, defaults={},
            cache_ttl_seconds=get_settings().default_cache_ttl_seconds, cache_system=False,
        )  # fmt: skip
        try:
            with connection() as conn:
                found = templates_repo.insert_template(
                    conn, tenant_id=tenant_id, template_id=ids.template_id(), content=content
                )
        except Conflict:  # another request made it first
            found = template_by_name(tenant_id=tenant_id, name=CHAT_TEMPLATE)
            if found is None:
                raise
    if get_settings().template_cache_seconds > 0:
        _recent[(tenant_id, CHAT_TEMPLATE)] = (time.monotonic(), found)
    return found


def get_template_row(*, tenant_id: str, template_id: str) -> Template:
    """A template (archived ones too) or 404."""
    with connection() as conn:
        row = templates_repo.get_template(conn, tenant_id=tenant_id, template_id=template_id, include_archived=True)
    if row is None:
        raise NotFound(f"template {template_id!r} not found", details={"templateId": template_id})
    return row


_recent: dict[tuple[str, str], tuple[float, Template]] = {}


def _resolve_ref(*, tenant_id: str, ref: str) -> Template:
    """The template a reference names: `tpl_…` (current version), `tpl_…@3`, `tpl_…@label`; 404 otherwise."""
    template_id, _, selector = ref.partition("@")
    if not selector:
        return get_template_row(tenant_id=tenant_id, template_id=template_id)
    current = get_template_row(tenant_id=tenant_id, template_id=template_id)
    with connection() as conn:
        labelled = (
            None
            if selector.isdigit()
            else templates_repo.labelled_version(conn, template_id=template_id, label=selector)
        )
        if not selector.isdigit() and labelled is None:
            raise NotFound(
                f"template {template_id!r} has no label {selector!r}",
                details={"templateId": template_id, "label": selector},
            )
        version = int(selector) if labelled is None else labelled
        row = templates_repo.template_at_version(conn, tenant_id=tenant_id, template_id=template_id, version=version)
    if row is None:
        raise NotFound(
            f"template {template_id!r} has no version {version}",
            details={"templateId": template_id, "version": version, "currentVersion": current.version},
        )
    return row


def cached_template(*, tenant_id: str, template_id: str) -> Template | None:
    """The template if this process holds a fresh copy, else None (never a database read)."""
    cached = _recent.get((tenant_id, template_id))
    if cached is not None and time.monotonic() - cached[0] < get_settings().template_cache_seconds:
        return cached[1]
    return None


def is_label_ref(ref: str) -> bool:
    """`tpl_…@production`: a reference a label move changes."""
    selector = ref.partition("@")[2]
    return bool(selector) and not selector.isdigit()


def template_for_generation(*, tenant_id: str, template_id: str) -> Template:
    """The template as generation sees it, kept in process for `template_cache_seconds`.

    Saves a Postgres round trip on the hot path; another sandbox may use the previous version for up
    to that long after a `PUT` (the job records which version it used). A label reference is resolved
    every time: once a move is acknowledged, no sandbox serves the version the label left.
    """
    if is_label_ref(template_id):  # where the label points now (one read), then that immutable version's copy
        base, _, label = template_id.partition("@")
        with connection() as conn:
            version = templates_repo.tenant_label_version(conn, tenant_id=tenant_id, template_id=base, label=label)
        if version is None:
            return _resolve_ref(tenant_id=tenant_id, ref=template_id)  # the 404 that says what is missing
        return template_for_generation(tenant_id=tenant_id, template_id=f"{base}@{version}")
    cached = cached_template(tenant_id=tenant_id, template_id=template_id)
    if cached is not None:
        return cached
    ttl, key, now = get_settings().template_cache_seconds, (tenant_id, template_id), time.monotonic()
    row = _resolve_ref(tenant_id=tenant_id, ref=template_id)
    if ttl > 0:
        if len(_recent) > 10_000:
            _recent.clear()
        _recent[key] = (now, row)
    return row


def _forget(tenant_id: str, template_id: str) -> None:
    for key in [k for k in _recent if k[0] == tenant_id and k[1].partition("@")[0] == template_id]:
        _recent.pop(key, None)


def get_template(*, tenant_id: str, template_id: str) -> TemplatePublic:
    """One template at its current version, or at the version a reference names (`tpl_…@3`, `tpl_…@label`)."""
    if "@" in template_id:
        return template_public(_resolve_ref(tenant_id=tenant_id, ref=template_id))
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
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


def _explain_miss(*, tenant_id: str, template_id: str, expected_version: int | None) -> Exception:
    row = get_template_row(tenant_id=tenant_id, template_id=template_id)
    if row.archived_at is not None:
        return Conflict(f"template {template_id!r} is archived", details={"templateId": template_id})
    return PreconditionFailed(
        f"template {template_id!r} is at version {row.version}, not {expected_version}",
        details={"currentVersion": row.version, "expectedVersion": expected_version},
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
        if row.archived_at is not None:
            return  # archiving twice is not an error
        raise _explain_miss(tenant_id=tenant_id, template_id=template_id, expected_version=expected_version)


def restore_template(*, tenant_id: str, template_id: str) -> TemplatePublic:
    """Un-archive a template (409 when a live template took its name meanwhile); restoring a live one is a no-op."""
    row = get_template_row(tenant_id=tenant_id, template_id=template_id)
    with connection() as conn:
        templates_repo.restore_template(conn, tenant_id=tenant_id, template_id=template_id, name=row.name)
    _forget(tenant_id, template_id)
    return template_public(get_template_row(tenant_id=tenant_id, template_id=template_id))


def list_versions(*, tenant_id: str, template_id: str) -> TemplateVersionList:
    """Every version of a template, newest first."""
    get_template_row(tenant_id=tenant_id, template_id=template_id)
    with connection() as conn:
        rows = templates_repo.list_versions(conn, template_id=template_id)
    return TemplateVersionList(items=[TemplateVersionPublic.model_validate(r, from_attributes=True) for r in rows])


def move_label(
    *, tenant_id: str, template_id: str, label: str, version: int, moved_by: str | None,
    experiment_id: str | None = None, protected: bool | None = None, may_move_protected: bool = True,
) -> int | None:  # fmt: skip
    """Point `label` at `version` (one call; the move is recorded with who, when, and the experiment that
    promoted it); returns the version it pointed at before. A protected label (or one being protected or
    unprotected) moves only when `may_move_protected` (a key with the `labels:write` scope)."""
    row = get_template_row(tenant_id=tenant_id, template_id=template_id)
    if not 1 <= version <= row.version:
        raise ValidationFailed.single("version", f"template {template_id!r} has versions 1 to {row.version}")

    def may_move(guarded: bool) -> None:
        if (guarded or protected is not None) and not may_move_protected:
            raise Forbidden(
                f"label {label!r} is protected: moving it (or changing its protection) needs the 'labels:write' scope",
                details={"requiredScope": "labels:write", "label": label},
            )

    with connection() as conn:
        previous = templates_repo.move_label(
            conn, template_id=template_id, label=label, version=version, moved_by=moved_by,
            experiment_id=experiment_id, protected=protected, may_move=may_move,
        )  # fmt: skip
    _forget(tenant_id, template_id)
    return previous


def list_labels(*, tenant_id: str, template_id: str) -> TemplateLabels:
    """A template's labels and the history of their moves."""
    get_template_row(tenant_id=tenant_id, template_id=template_id)
    with connection() as conn:
        labels = templates_repo.labels(conn, template_id=template_id)
        moves = templates_repo.label_moves(conn, template_id=template_id)
    return TemplateLabels.model_validate({"labels": labels, "moves": moves})
