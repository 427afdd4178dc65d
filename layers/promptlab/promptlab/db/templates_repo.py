"""Every SQL statement about templates and their versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from promptlab.core.errors import Conflict
from promptlab.db.connection import Connection, Row
from promptlab.models.templates import Template, TemplateContent, TemplateVersion

_SELECT = """
SELECT t.id, t.tenant_id, t.name, t.description, t.current_version AS version,
       t.created_at, t.updated_at, t.archived_at,
       v.body, v.system, v.variables, v.variables_schema, v.defaults, v.cache_ttl_seconds, v.cache_system
FROM templates t
JOIN template_versions v ON v.template_id = t.id AND v.version = t.current_version
"""


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"a template named {name!r} already exists",
        details={"fields": [{"field": "name", "message": "must be unique among live templates"}]},
    )


def _insert_version(conn: Connection, *, template_id: str, version: int, content: TemplateContent) -> None:
    conn.execute(
        "INSERT INTO template_versions (template_id, version, body, system, variables, variables_schema, defaults,"
        " cache_ttl_seconds, cache_system) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            template_id,
            version,
            content.body,
            content.system,
            Jsonb(content.variables),
            Jsonb(content.variables_schema) if content.variables_schema is not None else None,
            Jsonb(content.defaults),
            content.cache_ttl_seconds,
            content.cache_system,
        ),
    )


def insert_template(conn: Connection, *, tenant_id: str, template_id: str, content: TemplateContent) -> Template:
    """Create a template at version 1."""
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO templates (id, tenant_id, name, description, current_version) VALUES (%s, %s, %s, %s, 1)",
                (template_id, tenant_id, content.name, content.description),
            )
            _insert_version(conn, template_id=template_id, version=1, content=content)
    except psycopg.errors.UniqueViolation as exc:
        raise _name_taken(content.name) from exc
    template = get_template(conn, tenant_id=tenant_id, template_id=template_id, include_archived=True)
    assert template is not None
    return template


def get_template(
    conn: Connection, *, tenant_id: str, template_id: str, include_archived: bool = False
) -> Template | None:
    """The template with its current version, or None."""
    sql = _SELECT + " WHERE t.id = %s AND t.tenant_id = %s"
    if not include_archived:
        sql += " AND t.archived_at IS NULL"
    row = conn.execute(sql, (template_id, tenant_id)).fetchone()
    return Template.from_row(row) if row is not None else None


def template_named(conn: Connection, *, tenant_id: str, name: str) -> Template | None:
    """The live template with this name, or None."""
    row = conn.execute(_SELECT + " WHERE t.tenant_id = %s AND t.name = %s AND t.archived_at IS NULL", (tenant_id, name))
    found = row.fetchone()
    return Template.from_row(found) if found is not None else None


def list_templates(
    conn: Connection, *, tenant_id: str, limit: int, after_id: str | None, q: str | None
) -> list[Template]:
    """Live templates newest first, `limit` rows after the cursor id, optionally filtered by name."""
    sql = _SELECT + " WHERE t.tenant_id = %s AND t.archived_at IS NULL"
    params: list[Any] = [tenant_id]
    if after_id:
        sql += " AND t.id < %s"
        params.append(after_id)
    if q:
        sql += " AND (t.name ILIKE %s OR t.description ILIKE %s)"
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [pattern, pattern]
    sql += " ORDER BY t.id DESC LIMIT %s"
    params.append(limit)
    return [Template.from_row(row) for row in conn.execute(sql, params).fetchall()]


def add_version(
    conn: Connection, *, tenant_id: str, template_id: str, expected_version: int | None, content: TemplateContent
) -> int | None:
    """Bump to a new version (guarded by `expected_version` when given); None when no row matched."""
    sql = (
        "UPDATE templates SET current_version = current_version + 1, name = %s, description = %s,"
        " updated_at = now() WHERE id = %s AND tenant_id = %s AND archived_at IS NULL"
    )
    params: list[Any] = [content.name, content.description, template_id, tenant_id]
    if expected_version is not None:
        sql += " AND current_version = %s"
        params.append(expected_version)
    try:
        with conn.transaction():
            row = conn.execute(sql + " RETURNING current_version", params).fetchone()
            if row is None:
                return None
            version = int(row["current_version"])
            _insert_version(conn, template_id=template_id, version=version, content=content)
    except psycopg.errors.UniqueViolation as exc:
        raise _name_taken(content.name) from exc
    return version


def archive_template(conn: Connection, *, tenant_id: str, template_id: str, expected_version: int | None) -> bool:
    """Archive a live template; False when none matched."""
    sql = "UPDATE templates SET archived_at = now(), updated_at = now() WHERE id = %s AND tenant_id = %s"
    sql += " AND archived_at IS NULL"
    params: list[Any] = [template_id, tenant_id]
    if expected_version is not None:
        sql += " AND current_version = %s"
        params.append(expected_version)
    return conn.execute(sql, params).rowcount == 1


def restore_template(conn: Connection, *, tenant_id: str, template_id: str, name: str) -> bool:
    """Bring an archived template back; False when it was not archived. Its name must be free again."""
    try:
        cur = conn.execute(
            "UPDATE templates SET archived_at = NULL, updated_at = now()"
            " WHERE id = %s AND tenant_id = %s AND archived_at IS NOT NULL",
            (template_id, tenant_id),
        )
    except psycopg.errors.UniqueViolation as exc:
        raise _name_taken(name) from exc
    return cur.rowcount == 1


def list_versions(conn: Connection, *, template_id: str) -> list[TemplateVersion]:
    """Every version of a template, newest first."""
    rows = conn.execute(
        "SELECT template_id, version, body, system, variables, variables_schema, defaults, cache_ttl_seconds,"
        " cache_system, created_at FROM template_versions WHERE template_id = %s ORDER BY version DESC",
        (template_id,),
    ).fetchall()
    return [TemplateVersion.from_row(row) for row in rows]


def get_version(conn: Connection, *, template_id: str, version: int) -> TemplateVersion | None:
    """One version of a template."""
    row = conn.execute(
        "SELECT template_id, version, body, system, variables, variables_schema, defaults, cache_ttl_seconds,"
        " cache_system, created_at FROM template_versions WHERE template_id = %s AND version = %s",
        (template_id, version),
    ).fetchone()
    return TemplateVersion.from_row(row) if row is not None else None


def move_label(
    conn: Connection, *, template_id: str, label: str, version: int, moved_by: str | None,
    experiment_id: str | None = None, protected: bool | None = None,
    may_move: Callable[[bool], None] = lambda _: None,
) -> int | None:  # fmt: skip
    """Point a label at a version and record the move (and the experiment that promoted it); returns the
    version it pointed at before (None: new). `may_move(protected)` raises to refuse the move (before
    anything is written); `protected` marks the label protected or not (None: unchanged)."""
    with conn.transaction():
        before = conn.execute(
            "SELECT version, protected FROM template_labels WHERE template_id = %s AND label = %s FOR UPDATE",
            (template_id, label),
        ).fetchone()
        may_move(bool(before and before["protected"]) or bool(protected))
        conn.execute(
            "INSERT INTO template_labels (template_id, label, version, updated_by, protected)"
            " VALUES (%s, %s, %s, %s, coalesce(%s, false))"
            " ON CONFLICT (template_id, label) DO UPDATE SET version = EXCLUDED.version, updated_at = now(),"
            " updated_by = EXCLUDED.updated_by, protected = coalesce(%s, template_labels.protected)",
            (template_id, label, version, moved_by, protected, protected),
        )
        conn.execute(
            "INSERT INTO template_label_moves (template_id, label, from_version, to_version, moved_by, experiment_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (template_id, label, before["version"] if before else None, version, moved_by, experiment_id),
        )
    return int(before["version"]) if before else None


def labels(conn: Connection, *, template_id: str) -> list[Row]:
    """A template's labels and the versions they point at."""
    return conn.execute(
        "SELECT label, version, updated_at, updated_by, protected FROM template_labels WHERE template_id = %s"
        " ORDER BY label",
        (template_id,),
    ).fetchall()


def label_moves(conn: Connection, *, template_id: str) -> list[Row]:
    """Every label move of a template, newest first."""
    return conn.execute(
        "SELECT label, from_version, to_version, moved_by, moved_at, experiment_id FROM template_label_moves"
        " WHERE template_id = %s ORDER BY id DESC LIMIT 200",
        (template_id,),
    ).fetchall()


def labelled_version(conn: Connection, *, template_id: str, label: str) -> int | None:
    """The version a label points at."""
    row = conn.execute(
        "SELECT version FROM template_labels WHERE template_id = %s AND label = %s", (template_id, label)
    ).fetchone()
    return int(row["version"]) if row else None


def tenant_label_version(conn: Connection, *, tenant_id: str, template_id: str, label: str) -> int | None:
    """The version a label of the tenant's template points at (one indexed read), or None."""
    row = conn.execute(
        "SELECT l.version FROM template_labels l JOIN templates t ON t.id = l.template_id"
        " WHERE l.template_id = %s AND l.label = %s AND t.tenant_id = %s",
        (template_id, label, tenant_id),
    ).fetchone()
    return int(row["version"]) if row else None


def template_at_version(conn: Connection, *, tenant_id: str, template_id: str, version: int) -> Template | None:
    """The template joined with one given version (not necessarily the current one)."""
    row = conn.execute(
        "SELECT t.id, t.tenant_id, t.name, t.description, v.version, t.created_at, t.updated_at, t.archived_at,"
        " v.body, v.system, v.variables, v.variables_schema, v.defaults, v.cache_ttl_seconds, v.cache_system"
        " FROM templates t JOIN template_versions v ON v.template_id = t.id AND v.version = %s"
        " WHERE t.id = %s AND t.tenant_id = %s",
        (version, template_id, tenant_id),
    ).fetchone()
    return Template.from_row(row) if row is not None else None
