"""OpenAI's Files and Batch API wire formats (snake_case, Unix-second timestamps), as the official SDKs read
them, and the stored rows they are made from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from promptlab.core.json_types import JsonObject

BATCH_ENDPOINT = "/v1/chat/completions"
BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
ENDED = frozenset({"failed", "completed", "expired", "cancelled"})
FilePurpose = Literal["batch", "batch_output"]


def unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


@dataclass(frozen=True)
class StoredFile:
    """A row of `openai_files`: its bytes live in the stack's bucket under `object_key`."""

    id: str
    tenant_id: str
    purpose: str
    filename: str
    bytes: int
    object_key: str
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class StoredBatch:
    """A row of `openai_batches`."""

    id: str
    tenant_id: str
    api_key_id: str | None
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    status: str
    errors: list[JsonObject] | None
    total: int
    output_file_id: str | None
    error_file_id: str | None
    reserved_usd: Decimal
    budget_month: date | None
    created_at: datetime
    in_progress_at: datetime | None
    expires_at: datetime
    finalizing_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    expired_at: datetime | None
    cancelling_at: datetime | None
    cancelled_at: datetime | None


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None = None
    filename: str
    purpose: FilePurpose
    status: Literal["processed"] = "processed"
    status_details: str | None = None

    @classmethod
    def of(cls, stored: StoredFile) -> FileObject:
        return cls(
            id=stored.id, bytes=stored.bytes, created_at=unix(stored.created_at) or 0,
            expires_at=unix(stored.expires_at), filename=stored.filename, purpose=stored.purpose,
        )  # fmt: skip


class FileUpload(BaseModel):
    """Where to PUT the file (with these headers) before `POST /v1/files` names `upload_id`."""

    id: str
    object: Literal["file.upload"] = "file.upload"
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    max_bytes: int
    expires_at: int


class FileFromUpload(BaseModel):
    """`POST /v1/files` with a JSON body: the file PUT to an upload's URL becomes a file."""

    model_config = ConfigDict(extra="forbid")

    upload_id: Annotated[str, Field(min_length=1, max_length=100)]
    filename: Annotated[str, Field(min_length=1, max_length=255)]
    purpose: Literal["batch"]


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class BatchCreate(BaseModel):
    """`POST /v1/batches`."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: Annotated[str, Field(min_length=1, max_length=100)]
    endpoint: str
    completion_window: str
    metadata: Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)] | None = None
    output_expires_after: dict[str, Any] | None = None


class BatchLine(BaseModel):
    """One line of a batch's input file."""

    model_config = ConfigDict(extra="forbid")

    custom_id: Annotated[str, Field(min_length=1, max_length=512)]
    method: Literal["POST"]
    url: str
    body: dict[str, Any]


class BatchError(BaseModel):
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchError]


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class Batch(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None = None
    input_file_id: str
    completion_window: str
    status: BatchStatus
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts
    metadata: dict[str, str] | None = None

    @classmethod
    def of(cls, stored: StoredBatch, counts: RequestCounts) -> Batch:
        errors = BatchErrors(data=[BatchError.model_validate(e) for e in stored.errors]) if stored.errors else None
        return cls(
            id=stored.id, endpoint=stored.endpoint, errors=errors, input_file_id=stored.input_file_id,
            completion_window=stored.completion_window, status=stored.status,
            output_file_id=stored.output_file_id, error_file_id=stored.error_file_id,
            created_at=unix(stored.created_at) or 0, in_progress_at=unix(stored.in_progress_at),
            expires_at=unix(stored.expires_at), finalizing_at=unix(stored.finalizing_at),
            completed_at=unix(stored.completed_at), failed_at=unix(stored.failed_at),
            expired_at=unix(stored.expired_at), cancelling_at=unix(stored.cancelling_at),
            cancelled_at=unix(stored.cancelled_at), request_counts=counts, metadata=stored.metadata,
        )  # fmt: skip


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Batch]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
