"""The OpenAI-compatible Files and Batch APIs: `/v1/files` and `/v1/batches` over PromptLab's economy lane.

A batch's lines are ordinary jobs (`jobs/openai_batches.py`); these routes speak OpenAI's wire format, and
every error under `/v1/` comes out in OpenAI's shape.
"""

from __future__ import annotations

import base64
from email.message import Message
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import ValidationError

from promptlab.api.answers import doc
from promptlab.api.declared import route
from promptlab.api.resolver import current_principal
from promptlab.core.errors import BadRequest, ValidationFailed
from promptlab.core.validation import validation_fields
from promptlab.jobs import openai_batches, openai_files
from promptlab.models.openai_batches import (
    Batch,
    BatchCreate,
    BatchList,
    FileDeleted,
    FileFromUpload,
    FileList,
    FileObject,
    FileUpload,
)

router = Router()  # type: ignore[no-untyped-call]

FileId = Annotated[str, Path(min_length=1, max_length=100, description="A file id (`file-…`).")]
BatchId = Annotated[str, Path(min_length=1, max_length=100, description="A batch id (`batch_…`).")]
After = Annotated[str | None, Query(max_length=100, description="The last id of the previous page.")]
Limit = Annotated[int, Query(ge=1, le=10_000)]


def _tenant() -> str:
    return current_principal().tenant_id


def _answer(status: int, body: FileObject | FileList | FileDeleted | FileUpload | Batch | BatchList) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=body.model_dump_json())


def _from_upload(body: object) -> FileFromUpload:
    """`POST /v1/files` with a JSON body; 400 naming the first bad field."""
    try:
        return FileFromUpload.model_validate(body)
    except ValidationError as exc:
        field = validation_fields([dict(exc.errors()[0])])[0]
        raise ValidationFailed.single(field["field"], field["message"]) from None


def _form_parts() -> dict[str, Message]:
    """The multipart form's parts by name (`file`, `purpose`); 400 when the body is not one."""
    from email.parser import BytesParser  # only an upload pays for the email package's parser
    from email.policy import HTTP

    event = router.current_event
    content_type = event.headers.get("content-type") or event.headers.get("Content-Type") or ""
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8", "surrogateescape")
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequest("send the file as multipart/form-data with the fields `file` and `purpose`")
    form = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts: dict[str, Message] = {}
    for part in form.iter_parts() if form.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            parts[name] = part
    return parts


@route(
    router, "POST", "/v1/files", scope="generate", event="OpenAICreateFile",
    summary="Upload a batch input file (OpenAI-compatible)",
    description="A JSONL file of requests for `POST /v1/batches` (`purpose=batch`), as a multipart form the way"
    " `client.files.create(file=…, purpose=\"batch\")` sends it; up to `PROMPTLAB_OPENAI_FILE_MAX_BYTES` (4 MB)."
    " Stored private and encrypted in the stack's bucket; deleted after `PROMPTLAB_OPENAI_FILE_RETENTION_DAYS`."
    " A larger file (up to 200 MB): `POST /v1/files/uploads`, PUT the file to its `url`, then send"
    " `{\"upload_id\", \"filename\", \"purpose\": \"batch\"}` here as JSON.",
    responses=doc(200, FileObject, "The stored file", 400, 413), tags=["openai"],
)  # fmt: skip
def create_file() -> Response[str]:
    event = router.current_event
    content_type = (event.headers.get("content-type") or event.headers.get("Content-Type") or "").lower()
    if content_type.startswith("application/json"):  # a large file PUT to an upload's URL
        request = _from_upload(event.json_body)
        return _answer(200, openai_files.create_file_from_upload(principal=current_principal(), request=request))
    parts = _form_parts()
    upload, purpose = parts.get("file"), parts.get("purpose")
    if upload is None:
        raise ValidationFailed.single("file", "the form has no `file` field")
    if purpose is None:
        raise ValidationFailed.single("purpose", "the form has no `purpose` field (use `batch`)")
    content = upload.get_payload(decode=True)
    purpose_text = purpose.get_payload(decode=True)
    stored = openai_files.create_file(
        principal=current_principal(),
        filename=upload.get_filename() or "input.jsonl",
        purpose=(purpose_text if isinstance(purpose_text, bytes) else b"").decode("utf-8", "replace").strip(),
        content=content if isinstance(content, bytes) else b"",
    )
    return _answer(200, stored)


@route(
    router, "POST", "/v1/files/uploads", scope="generate", event="OpenAICreateFileUpload",
    summary="Upload a large batch file (PromptLab)",
    description="A presigned URL (15 minutes) to PUT one batch input file of up to"
    " `PROMPTLAB_OPENAI_UPLOAD_MAX_BYTES` (200 MB) into the stack's bucket; then `POST /v1/files` with"
    " `{\"upload_id\", \"filename\", \"purpose\": \"batch\"}` makes it a file. For files larger than a request body.",
    responses=doc(201, FileUpload, "Where to PUT the file", 503), tags=["openai"],
)  # fmt: skip
def create_file_upload() -> Response[str]:
    return _answer(201, openai_files.create_upload(principal=current_principal()))


@route(
    router, "GET", "/v1/files", scope="read", event="OpenAIListFiles", summary="List files (OpenAI-compatible)",
    description="This tenant's files, a page at a time (`after` the last id of the previous page).",
    responses=doc(200, FileList, "A page of files", 400), tags=["openai"],
)  # fmt: skip
def list_files(
    after: After = None,
    limit: Limit = 10_000,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    purpose: Annotated[str | None, Query(max_length=40)] = None,
) -> Response[str]:
    page = openai_files.list_files(tenant_id=_tenant(), purpose=purpose, after=after, limit=limit, order=order)
    return _answer(200, page)


@route(
    router, "GET", "/v1/files/<file_id>", scope="read", event="OpenAIGetFile",
    summary="Read a file's details (OpenAI-compatible)", description="The file object; another tenant's is a 404.",
    responses=doc(200, FileObject, "The file", 404), tags=["openai"],
)  # fmt: skip
def get_file(file_id: FileId) -> Response[str]:
    return _answer(200, openai_files.get_file(tenant_id=_tenant(), file_id=file_id))


@route(
    router, "GET", "/v1/files/<file_id>/content", scope="read", event="OpenAIFileContent",
    summary="Download a file (OpenAI-compatible)",
    description="The file's bytes; a file larger than an API answer may be is a redirect to a download URL"
    " valid for 5 minutes.",
    responses=doc(200, None, "The file's bytes", 302, 404), tags=["openai"],
)  # fmt: skip
def file_content(file_id: FileId) -> Response[str]:
    content = openai_files.file_content(tenant_id=_tenant(), file_id=file_id)
    if isinstance(content, str):
        return Response(status_code=302, content_type="text/plain", body="", headers={"Location": content})
    return Response(status_code=200, content_type="application/octet-stream", body=content.decode("utf-8", "replace"))


@route(
    router, "DELETE", "/v1/files/<file_id>", scope="generate", event="OpenAIDeleteFile",
    summary="Delete a file (OpenAI-compatible)", description="The file's record and bytes go at once.",
    responses=doc(200, FileDeleted, "Deleted", 404), tags=["openai"],
)  # fmt: skip
def delete_file(file_id: FileId) -> Response[str]:
    return _answer(200, openai_files.delete_file(tenant_id=_tenant(), file_id=file_id))


@route(
    router, "POST", "/v1/batches", scope="generate", event="OpenAICreateBatch",
    summary="Create a batch (OpenAI-compatible)",
    description="Run every line of an uploaded file (`/v1/chat/completions` requests, models routed as the chat"
    " door routes them) as a job: cache hits at once for free, lines whose provider has a batch API through"
    " it at batch prices, the rest at low priority. Every line is checked first: a bad one fails the batch,"
    " named by line and `custom_id`. The whole batch's worst case is reserved against the key's budget (429"
    " `insufficient_quota` naming the shortfall, nothing started); a key's rate limit counts lines.",
    responses=doc(200, Batch, "The batch (`in_progress`, or `failed` with its errors)", 400, 404, 429),
    request={"input_file_id": "file-01JABCDEF", "endpoint": "/v1/chat/completions", "completion_window": "24h"},
    tags=["openai"],
)  # fmt: skip
def create_batch(body: BatchCreate) -> Response[str]:
    return _answer(200, openai_batches.create_batch(principal=current_principal(), request=body))


@route(
    router, "GET", "/v1/batches", scope="read", event="OpenAIListBatches", summary="List batches (OpenAI-compatible)",
    description="This tenant's batches, newest first (`after` the last id of the previous page).",
    responses=doc(200, BatchList, "A page of batches", 400), tags=["openai"],
)  # fmt: skip
def list_batches(after: After = None, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Response[str]:
    return _answer(200, openai_batches.list_batches(tenant_id=_tenant(), after=after, limit=limit))


@route(
    router, "GET", "/v1/batches/<batch_id>", scope="read", event="OpenAIGetBatch",
    summary="Read a batch (OpenAI-compatible)",
    description="The batch with its `request_counts`; once its last line ended, its `output_file_id` and"
    " `error_file_id`. Another tenant's batch is a 404.",
    responses=doc(200, Batch, "The batch", 404), tags=["openai"],
)  # fmt: skip
def get_batch(batch_id: BatchId) -> Response[str]:
    return _answer(200, openai_batches.get_batch(tenant_id=_tenant(), batch_id=batch_id))


@route(
    router, "POST", "/v1/batches/<batch_id>/cancel", scope="generate", event="OpenAICancelBatch",
    summary="Cancel a batch (OpenAI-compatible)",
    description="Lines not yet taken by a provider are cancelled and their reservations released; lines"
    " running finish. `cancelling`, then `cancelled` with the finished lines in its output file.",
    responses=doc(200, Batch, "The batch", 404, 409), tags=["openai"],
)  # fmt: skip
def cancel_batch(batch_id: BatchId) -> Response[str]:
    return _answer(200, openai_batches.cancel_batch(tenant_id=_tenant(), batch_id=batch_id))
