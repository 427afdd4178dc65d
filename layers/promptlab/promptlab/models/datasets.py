"""Datasets on the wire: rows of `{input, expected?, metadata?}`, versioned like templates."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from promptlab.core.json_types import JsonObject
from promptlab.models.wire import RequestModel, UtcDatetime, WireModel

MAX_ROWS = 50_000
DatasetName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]


class DatasetRow(RequestModel):
    """One example: the template's variables, what a good answer is (for scorers), and labels of your own."""

    input: Annotated[dict[str, Any], Field(max_length=100)]
    expected: Any = None
    metadata: Annotated[dict[str, str], Field(max_length=50)] | None = None


UploadId = Annotated[str, Field(pattern=r"^upl_[A-Za-z0-9]{10,40}$", description="From `POST /datasets/uploads`.")]
FileFormat = Literal["jsonl", "csv"]


class DatasetContent(RequestModel):
    """Rows as JSON, a JSONL or CSV file's text, or such a file uploaded first (CSV: a header row; its columns
    are input fields, an `expected` column is the expected answer)."""

    rows: Annotated[list[JsonObject], Field(max_length=MAX_ROWS)] | None = None
    format: FileFormat | None = Field(default=None, description="With `content` or `upload`: how to read it.")
    content: Annotated[str, Field(max_length=10_000_000)] | None = None
    upload: UploadId | None = Field(default=None, description="A file PUT to the URL `POST /datasets/uploads` gave.")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetContent:
        if sum(source is not None for source in (self.rows, self.content, self.upload)) != 1:
            raise ValueError("send one of `rows`, `content` (with `format`) or `upload` (with `format`)")
        if self.rows is None and self.format is None:
            raise ValueError("`content` and `upload` need `format`: jsonl or csv")
        return self


class DatasetCreate(DatasetContent):
    name: DatasetName
    description: Annotated[str, Field(max_length=2_000)] | None = None


class DatasetUpdate(DatasetContent):
    """`PUT` replaces the rows and makes a new version (earlier versions stay readable)."""

    description: Annotated[str, Field(max_length=2_000)] | None = None


class DatasetUploadRequest(RequestModel):
    format: FileFormat


class DatasetUploadPublic(WireModel):
    """Where to PUT a dataset file (with this `Content-Type`) before naming `uploadId` in `POST /datasets`."""

    upload_id: str
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    max_bytes: int
    expires_at: UtcDatetime


class DatasetPublic(WireModel):
    id: str
    name: str
    description: str | None
    version: int = Field(description="The current version.")
    row_count: int
    fields: list[str] = Field(description="The input fields the rows have.")
    created_at: UtcDatetime
    updated_at: UtcDatetime


class DatasetPage(WireModel):
    items: list[DatasetPublic]
    next_cursor: str | None


class DatasetRowPublic(WireModel):
    n: int = Field(description="The row's number in its version (1-based, upload order).")
    input: JsonObject
    expected: Any = None
    metadata: dict[str, str] | None = None


class DatasetRowPage(WireModel):
    dataset_id: str
    version: int
    items: list[DatasetRowPublic]
    next_cursor: str | None
