"""`Idempotency-Key`: the same key and body replay the first answer for 24 h; another body is a 409."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from promptlab.core.errors import Conflict, ValidationFailed
from promptlab.core.hashing import canonical_json
from promptlab.core.settings import get_settings
from promptlab.db import idempotency_repo
from promptlab.db.connection import connection

WAIT_FOR_OTHER_SECONDS = 3.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    replayed: bool = False


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ValidationFailed.single("Idempotency-Key", "must be 1 to 255 printable characters")


def run(*, tenant_id: str, key: str | None, request: Any, compute: Callable[[], Answer]) -> Answer:
    """Compute the answer once per (tenant, key); replay it for the same request, 409 for another."""
    if key is None:
        return compute()
    _check_key(key)
    body_hash = hashlib.sha256(canonical_json(request).encode()).hexdigest()
    with connection() as conn:
        claimed = idempotency_repo.claim_key(
            conn, tenant_id=tenant_id, key=key, body_hash=body_hash, ttl_seconds=get_settings().idempotency_ttl_seconds
        )
    if claimed is None:
        return _replay(tenant_id=tenant_id, key=key, body_hash=body_hash)
    try:
        answer = compute()
    except BaseException:
        with connection() as conn:
            idempotency_repo.release_key(conn, tenant_id=tenant_id, key=key)
        raise
    with connection() as conn:
        idempotency_repo.save_answer(
            conn, tenant_id=tenant_id, key=key, status_code=answer.status, response=json.loads(answer.body)
        )
    return answer


def _replay(*, tenant_id: str, key: str, body_hash: str) -> Answer:
    deadline = time.monotonic() + WAIT_FOR_OTHER_SECONDS
    while True:
        with connection() as conn:
            stored = idempotency_repo.get_key(conn, tenant_id=tenant_id, key=key)
        if stored is None:
            raise Conflict("the request that used this Idempotency-Key failed; send it again with a new key")
        if stored["body_hash"] != body_hash:
            raise Conflict(
                "this Idempotency-Key was used with a different request body",
                details={"fields": [{"field": "Idempotency-Key", "message": "already used for another body"}]},
            )
        if stored["status_code"] is not None:
            body = json.dumps(stored["response"], separators=(",", ":"), ensure_ascii=False)
            return Answer(status=stored["status_code"], body=body, replayed=True)
        if time.monotonic() > deadline:
            raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly")
        time.sleep(0.05)
