"""OpenAI-style files: batch input files uploaded through the API and the output and error files batches
write, their bytes private and encrypted in the stack's bucket (`files/<tenant>/<file id>`), deleted with
`DELETE` or after `PROMPTLAB_OPENAI_FILE_RETENTION_DAYS`. Another tenant's file id finds nothing (404)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import IO

from promptlab.core import ids
from promptlab.core.clock import utc_now
from promptlab.core.errors import NotFound, ValidationFailed
from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.db import openai_batches_repo as repo
from promptlab.db.connection import connection
from promptlab.infra import dataset_uploads as bucket
from promptlab.models.openai_batches import (
    FileDeleted,
    FileFromUpload,
    FileList,
    FileObject,
    FileUpload,
    StoredFile,
)
from promptlab.tenancy.auth import Principal


def _file_not_found(file_id: str) -> NotFound:
    return NotFound(f"No such File object: {file_id}", details={"param": "file_id"})


def create_file(*, principal: Principal, filename: str, purpose: str, content: bytes) -> FileObject:
    """Store an uploaded batch input file (private and encrypted in the stack's bucket)."""
    settings = get_settings()
    if purpose != "batch":
        raise ValidationFailed.single("purpose", f"purpose must be 'batch' here, not {purpose!r}")
    if not content:
        raise ValidationFailed.single("file", "the file is empty")
    stored = new_file(tenant_id=principal.tenant_id, purpose="batch", filename=filename[:255] or "input.jsonl",
                       size=len(content), retention_days=settings.openai_file_retention_days)  # fmt: skip
    _check_room(principal.tenant_id, len(content))
    bucket.put(key=stored.object_key, body=content)
    with connection() as conn:
        repo.insert_file(conn, stored)
    logger.info("file stored", file_id=stored.id, bytes=stored.bytes)
    return FileObject.of(stored)


def _check_room(tenant_id: str, size: int) -> None:
    """A 400 naming `file` when the tenant's input files would hold more than their cap with this one."""
    cap = get_settings().openai_tenant_max_file_bytes
    with connection() as conn:
        held = repo.tenant_input_bytes(conn, tenant_id=tenant_id)
    if held + size > cap:
        raise ValidationFailed.single(
            "file", f"this tenant's batch files hold {held:,} bytes of {cap:,}: delete some (DELETE /v1/files/{{id}})"
        )


UPLOAD_SECONDS = 900  # how long an upload's URL takes a PUT


def create_upload(*, principal: Principal) -> FileUpload:
    """A presigned URL (15 minutes) for one batch file larger than a request body may be."""
    upload_id = f"upload-{ids.ulid()}"
    headers = {"Content-Type": "application/octet-stream"}
    url = bucket.upload_url(key=bucket.key_of(principal.tenant_id, upload_id), content_type=headers["Content-Type"],
                            expires_seconds=UPLOAD_SECONDS)  # fmt: skip
    expires = int((utc_now() + timedelta(seconds=UPLOAD_SECONDS)).timestamp())
    return FileUpload(id=upload_id, url=url, headers=headers, max_bytes=get_settings().openai_upload_max_bytes,
                      expires_at=expires)  # fmt: skip


def create_file_from_upload(*, principal: Principal, request: FileFromUpload) -> FileObject:
    """The file PUT to an upload's URL, kept as a batch input file (the upload itself is dropped)."""
    settings = get_settings()
    stored = new_file(tenant_id=principal.tenant_id, purpose="batch", filename=request.filename, size=0,
                      retention_days=settings.openai_file_retention_days)  # fmt: skip
    size = bucket.move(source=bucket.key_of(principal.tenant_id, request.upload_id), target=stored.object_key,
                       max_bytes=settings.openai_upload_max_bytes)  # fmt: skip
    try:
        if size == 0:
            raise ValidationFailed.single("upload_id", "the uploaded file is empty")
        _check_room(principal.tenant_id, size)
    except ValidationFailed:
        bucket.forget(key=stored.object_key)
        raise
    stored = replace(stored, bytes=size)
    with connection() as conn:
        repo.insert_file(conn, stored)
    logger.info("file stored from an upload", file_id=stored.id, bytes=size)
    return FileObject.of(stored)


def new_file(
    *, tenant_id: str, purpose: str, filename: str, size: int, retention_days: int, file_id: str = ""
) -> StoredFile:
    file_id = file_id or f"file-{ids.ulid()}"
    now = utc_now()
    return StoredFile(id=file_id, tenant_id=tenant_id, purpose=purpose, filename=filename, bytes=size,
                      object_key=bucket.file_key(tenant_id, file_id), created_at=now,
                      expires_at=now + timedelta(days=retention_days))  # fmt: skip


def stored_file(tenant_id: str, file_id: str) -> StoredFile:
    with connection() as conn:
        stored = repo.get_file(conn, tenant_id=tenant_id, file_id=file_id)
    if stored is None:
        raise _file_not_found(file_id)
    return stored


def get_file(*, tenant_id: str, file_id: str) -> FileObject:
    return FileObject.of(stored_file(tenant_id, file_id))


def list_files(*, tenant_id: str, purpose: str | None, after: str | None, limit: int, order: str) -> FileList:
    with connection() as conn:
        page = repo.list_files(conn, tenant_id=tenant_id, purpose=purpose, after=after, limit=limit,
                               newest_first=order == "desc")  # fmt: skip
    data = [FileObject.of(f) for f in page[:limit]]
    return FileList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                    has_more=len(page) > limit)  # fmt: skip


def delete_file(*, tenant_id: str, file_id: str) -> FileDeleted:
    """Delete the file's record and its bytes (a batch that read it keeps its jobs)."""
    with connection() as conn:
        stored = repo.delete_file(conn, tenant_id=tenant_id, file_id=file_id)
    if stored is None:
        raise _file_not_found(file_id)
    bucket.forget(key=stored.object_key)
    return FileDeleted(id=file_id)


def file_content(*, tenant_id: str, file_id: str) -> bytes | str:
    """The file's bytes, or a short-lived download URL when it is larger than an API answer may be."""
    stored = stored_file(tenant_id, file_id)
    limit = get_settings().openai_file_max_bytes
    if stored.bytes > limit:
        return bucket.download_url(key=stored.object_key)
    return b"".join(bucket.chunks(key=stored.object_key, max_bytes=limit))


def purge_expired_files(*, limit: int = 500) -> int:
    """Delete files past their retention (the sweeper's step)."""
    with connection() as conn, conn.transaction():
        gone = repo.expired_files(conn, limit=limit)
    for stored in gone:
        bucket.forget(key=stored.object_key)
    return len(gone)


def lines(key: str, max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line) of a stored file, a megabyte read at a time; blank lines are skipped."""
    rest, number = b"", 0
    for part in bucket.chunks(key=key, max_bytes=max_bytes):
        *whole, rest = (rest + part).split(b"\n")
        for line in whole:
            number += 1
            if line.strip():
                yield number, line
    if rest.strip():
        yield number + 1, rest


def store_result_file(*, tenant_id: str, name: str, body: IO[bytes], size: int, file_id: str) -> str:
    days = get_settings().openai_file_retention_days
    file = new_file(tenant_id=tenant_id, purpose="batch_output", filename=name, size=size,
                     retention_days=days, file_id=file_id)  # fmt: skip
    bucket.put(key=file.object_key, body=body)
    with connection() as conn, conn.transaction():
        repo.delete_file(conn, tenant_id=tenant_id, file_id=file_id)
        repo.insert_file(conn, file)
    return file.id
