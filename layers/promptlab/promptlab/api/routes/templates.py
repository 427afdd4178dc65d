"""Template routes: create, read, list, new versions, archive, labels, render and diff."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from promptlab.api.answers import doc, json_response, no_content
from promptlab.api.declared import route
from promptlab.api.resolver import current_principal
from promptlab.core import scopes
from promptlab.core.errors import PreconditionFailed
from promptlab.jobs import preview
from promptlab.models.templates import (
    MoveLabel,
    RenderRequest,
    RenderResult,
    TemplateCreate,
    TemplateDiff,
    TemplateLabels,
    TemplatePage,
    TemplatePublic,
    TemplateUpdate,
    TemplateVersionList,
)
from promptlab.templates import diffs
from promptlab.templates import service as template_service
from promptlab.tenancy import audit, tenant_events

router = Router()  # type: ignore[no-untyped-call]

TemplateId = Annotated[str, Path(min_length=1, max_length=64, description="A template id (`tpl_…`).")]
LabelPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9._-]*$", description="A label name.")
]
VersionPath = Annotated[int, Path(ge=1, le=1_000_000, description="A version number.")]
TemplateRefPath = Annotated[
    str, Path(min_length=1, max_length=140, description="A template id, or a reference: `tpl_…@3`, `tpl_…@label`.")
]
IfNoneMatch = Annotated[
    str | None, Header(alias="if-none-match", description="The `ETag` you hold: 304 while it is still current.")
]
IfMatch = Annotated[
    str | None,
    Header(alias="if-match", description="The version you last read (the `ETag`); 412 when it is stale."),
]


def _tenant() -> str:
    return current_principal().tenant_id


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise PreconditionFailed(f"If-Match {if_match!r} is not a version this API issued")
    return int(tag)


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


@route(
    router,
    "POST",
    "/templates",
    scope="templates:write",
    event="CreateTemplate",
    summary="Create a template",
    description="A new template at version 1. `{{ variables }}` in the body are found for you; `variablesSchema` types"
    " them (JSON Schema) instead. Names are unique per tenant (409).",
    responses=doc(201, TemplatePublic, "Created at version 1", 400, 409, 415, 422),
    request={
        "name": "blog-post",
        "body": "Write a blog post about {{ topic }} in {{ words }} words.",
        "variablesSchema": {
            "type": "object",
            "required": ["topic"],
            "properties": {"topic": {"type": "string"}, "words": {"type": "integer", "default": 300}},
        },
        "defaults": {"maxTokens": 800},
    },
    tags=["templates"],
)
def create_template(body: TemplateCreate) -> Response[str]:
    template = template_service.create_template(tenant_id=_tenant(), request=body)
    audit.record(current_principal(), "template.created", "template", template.id,
                 after={"name": template.name, "version": template.version})  # fmt: skip
    return json_response(201, template, {**_etag(template.version), "Location": f"/templates/{template.id}"})


@route(
    router,
    "GET",
    "/templates",
    scope="read",
    event="ListTemplates",
    summary="List templates",
    description="Live templates, newest first, a page at a time (`cursor` from `nextCursor`); `q` matches names.",
    responses=doc(200, TemplatePage, "A page of live templates", 422),
    tags=["templates"],
)
def list_templates(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the name or description.")] = None,
) -> Response[str]:
    return json_response(200, template_service.list_templates(tenant_id=_tenant(), limit=limit, cursor=cursor, q=q))


@route(
    router,
    "GET",
    "/templates/<id>",
    scope="read",
    event="GetTemplate",
    summary="Read a template",
    description="The template at its current version, or at the version a reference names (`tpl_…@3`,"
    " `tpl_…@production`), with an `ETag` (the version) to send back as `If-Match`, or as `If-None-Match` to"
    " learn with a 304 that a label still points where it did.",
    responses=doc(200, TemplatePublic, "The template", 404),
    tags=["templates"],
)
def get_template(id: TemplateRefPath, if_none_match: IfNoneMatch = None) -> Response[str]:
    template = template_service.get_template(tenant_id=_tenant(), template_id=id)
    etag = _etag(template.version)
    if if_none_match is not None and etag["ETag"] in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, body="", headers=etag)
    return json_response(200, template, etag)


@route(
    router,
    "PUT",
    "/templates/<id>",
    scope="templates:write",
    event="UpdateTemplate",
    summary="Change a template",
    description="Replaces the template and makes a new version; earlier versions stay readable and runnable"
    " (`tpl_…@2`)."
    " With `If-Match`, a change made meanwhile answers 412.",
    responses=doc(200, TemplatePublic, "The new version", 400, 404, 409, 412, 415, 422),
    request={"name": "blog-post", "body": "Write a short blog post about {{ topic }}."},
    tags=["templates"],
)
def update_template(id: TemplateId, body: TemplateUpdate, if_match: IfMatch = None) -> Response[str]:
    template = template_service.update_template(
        tenant_id=_tenant(), template_id=id, request=body, expected_version=_expected_version(if_match)
    )
    audit.record(current_principal(), "template.versioned", "template", id, before={"version": template.version - 1},
                 after={"name": template.name, "version": template.version})  # fmt: skip
    return json_response(200, template, _etag(template.version))


@route(
    router,
    "DELETE",
    "/templates/<id>",
    scope="templates:write",
    event="ArchiveTemplate",
    summary="Archive a template",
    description="It leaves the list and takes no new jobs; `POST /templates/{id}/restore` brings it back.",
    responses=doc(204, None, "Archived", 404, 412),
    tags=["templates"],
)
def archive_template(id: TemplateId, if_match: IfMatch = None) -> Response[str]:
    template_service.archive_template(tenant_id=_tenant(), template_id=id, expected_version=_expected_version(if_match))
    audit.record(current_principal(), "template.archived", "template", id)
    return no_content()


@route(
    router,
    "POST",
    "/templates/<id>/restore",
    scope="templates:write",
    event="RestoreTemplate",
    summary="Restore an archived template",
    description="The template is listed again and takes new jobs, at its latest version.",
    responses=doc(200, TemplatePublic, "Live again (a template that was not archived is returned as is)", 404, 409),
    tags=["templates"],
)
def restore_template(id: TemplateId) -> Response[str]:
    template = template_service.restore_template(tenant_id=_tenant(), template_id=id)
    audit.record(current_principal(), "template.restored", "template", id, after={"version": template.version})
    return json_response(200, template, _etag(template.version))


@route(
    router,
    "POST",
    "/templates/<id>/render",
    scope="read",
    event="RenderTemplate",
    summary="Render without running",
    description="What `POST /generate` would send the provider (system prompt, turns, parameters), with no job and"
    " no cost.",
    responses=doc(200, RenderResult, "The prompts a generation would send, tokens and worst-case cost", 404, 422),
    request={"input": {"topic": "TypeScript"}},
    tags=["templates"],
)
def render_template(id: TemplateId, body: RenderRequest) -> Response[str]:
    return json_response(200, preview.preview(principal=current_principal(), template_id=id, request=body))


@route(
    router,
    "GET",
    "/templates/<id>/labels",
    scope="read",
    event="ListTemplateLabels",
    summary="List labels",
    description="Each label (`production`, `staging`, …) with the version it points at, and every move.",
    responses=doc(200, TemplateLabels, "Labels and their moves", 404),
    tags=["templates"],
)
def list_labels(id: TemplateId) -> Response[str]:
    return json_response(200, template_service.list_labels(tenant_id=_tenant(), template_id=id))


@route(
    router,
    "PUT",
    "/templates/<id>/labels/<label>",
    scope="templates:write|labels:write",
    event="MoveTemplateLabel",
    summary="Move a label",
    description="Point a label at a version; jobs asking for `tpl_…@label` use it from then on. A protected"
    " label (`protected: true`) moves only with a key holding the `labels:write` scope (403 otherwise).",
    responses=doc(200, TemplateLabels, "The label points at the version (the move is recorded)", 403, 404, 422),
    request={"version": 3, "protected": True},
    tags=["templates"],
)
def move_label(id: TemplateId, label: LabelPath, body: MoveLabel) -> Response[str]:
    principal = current_principal()
    moved_by = principal.key_name or principal.key_id or "anonymous"
    previous = template_service.move_label(
        tenant_id=_tenant(), template_id=id, label=label, version=body.version, moved_by=moved_by,
        protected=body.protected, may_move_protected=scopes.holds(principal.scopes, "labels:write"),
    )  # fmt: skip
    audit.record(principal, "label.moved", "template", id, before={"label": label, "version": previous},
                 after={"label": label, "version": body.version, "protected": body.protected})  # fmt: skip
    moved = {"templateId": id, "label": label, "fromVersion": previous, "toVersion": body.version, "movedBy": moved_by}
    tenant_events.publish(tenant_id=principal.tenant_id, event="template.label.moved", data=moved)
    return json_response(200, template_service.list_labels(tenant_id=_tenant(), template_id=id))


@route(
    router,
    "GET",
    "/templates/<id>/versions/<a>/diff/<b>",
    scope="read",
    event="DiffTemplateVersions",
    summary="Compare two versions",
    description="A unified diff of the body and system prompt, and what changed in variables and defaults.",
    responses=doc(200, TemplateDiff, "What changed from version a to version b", 404, 422),
    tags=["templates"],
)
def diff_versions(id: TemplateId, a: VersionPath, b: VersionPath) -> Response[str]:
    return json_response(200, diffs.diff_versions(tenant_id=_tenant(), template_id=id, a=a, b=b))


@route(
    router,
    "GET",
    "/templates/<id>/versions",
    scope="read",
    event="ListTemplateVersions",
    summary="List versions",
    description="Every version of the template, oldest first.",
    responses=doc(200, TemplateVersionList, "Every version, newest first", 404),
    tags=["templates"],
)
def list_versions(id: TemplateId) -> Response[str]:
    return json_response(200, template_service.list_versions(tenant_id=_tenant(), template_id=id))
