"""S3 adapter for the stack's uploads bucket: dataset files too large for a request body (a presigned PUT,
then the API reads it once) and the OpenAI-style files of batches (`files/<tenant>/<file id>`).

A key names its tenant (`uploads/<tenant>/<upload id>`), so another tenant's id finds nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from typing import Any

from promptlab.core.errors import DependencyUnavailable, PayloadTooLarge, ValidationFailed
from promptlab.core.settings import get_settings


@cache
def _s3(region: str, endpoint: str | None) -> Any:
    import boto3  # only an upload pays for it
    from botocore.config import Config

    config = Config(
        connect_timeout=2, read_timeout=30, retries={"max_attempts": 2}, signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint else {},
    )  # fmt: skip
    return boto3.client("s3", region_name=region, endpoint_url=endpoint, config=config)


def _client() -> Any:
    settings = get_settings()
    return _s3(settings.aws_region, settings.aws_endpoint_url)


def _bucket() -> str:
    bucket = get_settings().dataset_uploads_bucket
    if not bucket:
        raise ValidationFailed.single("upload", "this deployment has no uploads bucket: send the rows in the body")
    return bucket


def key_of(tenant_id: str, upload_id: str) -> str:
    return f"uploads/{tenant_id}/{upload_id}"


def upload_url(*, key: str, content_type: str, expires_seconds: int) -> str:
    """A URL that takes one PUT of the file (with this Content-Type) for `expires_seconds`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        url: str = _client().generate_presigned_url(
            "put_object",
            Params={"Bucket": _bucket(), "Key": key, "ContentType": content_type},
            ExpiresIn=expires_seconds,
        )
    except (BotoCoreError, ClientError) as exc:
        raise DependencyUnavailable("the uploads bucket cannot sign an upload now") from exc
    return url


CHUNK_BYTES = 1 << 20  # read a file a megabyte at a time


def _size(s3: Any, bucket: str, key: str, *, max_bytes: int, field: str) -> int:
    """The object's size, from a HEAD before a byte is read: 422 naming `field` when nothing was put there,
    413 when it is over `max_bytes`. Raises boto's other errors for the caller."""
    from botocore.exceptions import ClientError

    try:
        size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            raise ValidationFailed.single(
                field, "nothing was uploaded under this id (or it expired): PUT the file to its URL first"
            ) from None
        raise
    if size > max_bytes:
        raise PayloadTooLarge(
            f"the file is {size:,} bytes; at most {max_bytes:,} are taken here",
            details={"bytes": size, "maxBytes": max_bytes},
        )
    return size


def chunks(*, key: str, max_bytes: int) -> Iterator[bytes]:
    """The uploaded file, a megabyte at a time (never whole in memory); 422 naming `upload` when nothing was
    put there, 413 when it is over `max_bytes` (checked before a byte is read)."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3, bucket = _client(), _bucket()
    try:
        _size(s3, bucket, key, max_bytes=max_bytes, field="upload")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        read = 0
        while chunk := body.read(CHUNK_BYTES):
            read += len(chunk)
            if read > max_bytes:  # the object grew after it was measured
                raise PayloadTooLarge(f"the uploaded file is over {max_bytes:,} bytes", details={"maxBytes": max_bytes})
            yield chunk
    except ClientError as exc:
        raise DependencyUnavailable("the uploads bucket cannot be read now") from exc
    except BotoCoreError as exc:
        raise DependencyUnavailable("the uploads bucket cannot be read now") from exc


def file_key(tenant_id: str, file_id: str) -> str:
    return f"files/{tenant_id}/{file_id}"


def put(*, key: str, body: Any) -> None:
    """Store an object (bytes or a file object, read in parts by boto3), encrypted at rest by the bucket."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _client().upload_fileobj(body, _bucket(), key) if hasattr(body, "read") else _client().put_object(
            Bucket=_bucket(), Key=key, Body=body
        )
    except (BotoCoreError, ClientError) as exc:
        raise DependencyUnavailable("the files bucket cannot store the file now") from exc


def move(*, source: str, target: str, max_bytes: int) -> int:
    """Move an uploaded object to its lasting key (a copy inside the bucket, then the upload is dropped);
    its size. 422 naming `upload_id` when nothing was put there, 413 past `max_bytes` (nothing moved)."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3, bucket = _client(), _bucket()
    try:
        size = _size(s3, bucket, source, max_bytes=max_bytes, field="upload_id")
        s3.copy({"Bucket": bucket, "Key": source}, bucket, target)
    except (BotoCoreError, ClientError) as exc:
        raise DependencyUnavailable("the files bucket cannot be written now") from exc
    forget(key=source)
    return size


def download_url(*, key: str, expires_seconds: int = 300) -> str:
    """A URL that reads the object for `expires_seconds` (for a file too large for an API answer)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        url: str = _client().generate_presigned_url(
            "get_object", Params={"Bucket": _bucket(), "Key": key}, ExpiresIn=expires_seconds
        )
    except (BotoCoreError, ClientError) as exc:
        raise DependencyUnavailable("the files bucket cannot sign a download now") from exc
    return url


def forget(*, key: str) -> None:
    """Drop an upload once its rows are stored (the bucket's lifecycle rule drops the rest after a day)."""
    from botocore.exceptions import BotoCoreError, ClientError

    with contextlib.suppress(BotoCoreError, ClientError):
        _client().delete_object(Bucket=_bucket(), Key=key)
