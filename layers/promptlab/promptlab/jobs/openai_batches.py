"""OpenAI's Batch API over the economy lane: a JSONL file of chat requests becomes one job per line.

- `create_batch` reads the input file once, line by line (never whole in memory), and checks every line as
  `POST /v1/chat/completions` would (a bad line fails the batch, named by its line and `custom_id`, before
  anything runs). In the same transaction each line becomes a job: a cache hit is answered at once for free;
  a line whose provider has a batch API waits for the economy lane's next provider batch (half price); the
  others run in the standard lane at low priority. The whole batch's worst case is reserved against the key's
  budget before it commits (else nothing is stored: 429 `insufficient_quota` naming the shortfall), and each
  job carries its share, so each line settles once as any job does. A key's rate limit counts the lines.
- A batch is `in_progress` until its last line ends; the first to see that (a read, a cancel, the sweeper)
  writes the output and error files (OpenAI's line format, keyed by `custom_id`, with the job id as the
  `request_id`) and ends it `completed`, `cancelled` or `expired`, with a tenant event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from pydantic import ValidationError

from promptlab.core import ids
from promptlab.core.clock import utc_now
from promptlab.core.errors import Conflict, NotFound, PromptLabError, RateLimited, ValidationFailed
from promptlab.core.observability import count, logger
from promptlab.core.settings import get_settings
from promptlab.db import job_bulk_repo
from promptlab.db import openai_batches_repo as repo
from promptlab.db.connection import Connection, connection
from promptlab.infra import request_limits
from promptlab.jobs import chat, openai_batch_results, openai_files
from promptlab.jobs.accept import cache_hit_job, cached_results
from promptlab.jobs.lifecycle import send_then_mark
from promptlab.jobs.openai_answers import parse_chat
from promptlab.models.jobs import Job
from promptlab.models.openai_batches import (
    BATCH_ENDPOINT,
    Batch,
    BatchCreate,
    BatchError,
    BatchLine,
    BatchList,
    StoredBatch,
    StoredFile,
)
from promptlab.models.openai_chat import ChatRequest
from promptlab.providers.registry import batch_takes
from promptlab.tenancy import budgets, tenant_events
from promptlab.tenancy.auth import Principal

MAX_REPORTED_ERRORS = 100  # a file's first errors; checking stops there
STORE_CHUNK = 500  # lines stored at once
STALE_FINALIZING = timedelta(minutes=5)  # a finalizer that died: the next look writes the files again


class _BadLines(Exception):
    """Rolls back the jobs made from a file that turned out to have bad lines."""


def _batch_not_found(batch_id: str) -> NotFound:
    return NotFound(f"No batch found with id '{batch_id}'.", details={"param": "batch_id"})


# --- creating a batch ----------------------------------------------------------------------------------


def _line_error(number: int, custom_id: str | None, code: str, message: str, param: str | None) -> BatchError:
    named = f"line {number}" + (f" (custom_id {custom_id!r})" if custom_id else "")
    return BatchError(code=code, message=f"{named}: {message}", param=param, line=number)


def _parse_line(number: int, raw: bytes, seen: set[str]) -> BatchLine | BatchError:
    try:
        data = json.loads(raw)
    except ValueError:
        return _line_error(number, None, "invalid_json_line", "This line is not parseable as valid JSON.", None)
    custom_id = data.get("custom_id") if isinstance(data, dict) else None
    custom_id = custom_id if isinstance(custom_id, str) else None
    try:
        line = BatchLine.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        if first["type"] == "missing":
            return _line_error(number, custom_id, "missing_required_parameter",
                               f"Missing required parameter: '{field}'.", field)  # fmt: skip
        return _line_error(number, custom_id, "invalid_request", f"{field}: {first['msg']}", field)
    if line.url != BATCH_ENDPOINT:
        message = f"The URL {line.url!r} does not match the batch's endpoint {BATCH_ENDPOINT}."
        return _line_error(number, line.custom_id, "invalid_url", message, "url")
    if line.custom_id in seen:
        return _line_error(number, line.custom_id, "duplicate_custom_id",
                           "The custom_id for this request is a duplicate of another request; each must be unique.",
                           "custom_id")  # fmt: skip
    seen.add(line.custom_id)
    return line


def _job_of(
    principal: Principal,
    line: BatchLine,
    request: ChatRequest,
    number: int,
    targets: dict[str, chat.ChatTarget],
    batch: StoredBatch,
) -> tuple[Job, chat.ChatTarget, bool]:
    """The line's job as the chat door would make it, in the economy lane where its provider has a batch API;
    with its template and whether it may be answered from the cache."""
    target = targets.get(request.model)
    if target is None:
        target = targets[request.model] = chat.route_model(tenant_id=principal.tenant_id, name=request.model)
    generation, job = chat.chat_job(principal=principal, chat=request, target=target)
    economy = batch_takes(job.provider, job.model)
    job = replace(job, priority="economy" if economy else "low", lane="economy" if economy else "standard",
                  single_flight=False, custom_id=line.custom_id, batch_line=number, openai_batch_id=batch.id,
                  expires_at=batch.expires_at)  # fmt: skip
    return job, target, generation.cache


def _refusal(number: int, custom_id: str, exc: PromptLabError) -> BatchError:
    fields = exc.details.get("fields") or []
    param = exc.details.get("param") or (fields[0]["field"] if fields else None)
    code = str(exc.details.get("openaiCode") or ("model_not_found" if isinstance(exc, NotFound) else "invalid_request"))
    return _line_error(number, custom_id, code, exc.message, f"body.{param}" if param else "body")


def create_batch(*, principal: Principal, request: BatchCreate) -> Batch:
    """Check the input file and make its lines jobs (or a `failed` batch naming the bad lines)."""
    settings = get_settings()
    if request.endpoint != BATCH_ENDPOINT:
        raise ValidationFailed.single("endpoint", f"only {BATCH_ENDPOINT} is supported here, not {request.endpoint!r}")
    if request.completion_window != "24h":
        raise ValidationFailed.single("completion_window", "completion_window must be '24h'")
    source = openai_files.stored_file(principal.tenant_id, request.input_file_id)
    if source.purpose != "batch":
        raise ValidationFailed.single("input_file_id", f"file {source.id} has purpose {source.purpose!r}, not 'batch'")
    now = utc_now()
    batch = StoredBatch(
        id=ids.new_id("batch"), tenant_id=principal.tenant_id, api_key_id=principal.key_id,
        input_file_id=source.id, endpoint=request.endpoint, completion_window=request.completion_window,
        metadata=request.metadata, status="in_progress", errors=None, total=0, output_file_id=None,
        error_file_id=None, reserved_usd=Decimal(0), budget_month=None, created_at=now, in_progress_at=now,
        expires_at=now + timedelta(hours=24), finalizing_at=None, completed_at=None, failed_at=None,
        expired_at=None, cancelling_at=None, cancelled_at=None,
    )  # fmt: skip
    with connection() as conn:
        try:
            with conn.transaction():
                batch, fresh = _store_lines(conn, principal, batch, source, settings.openai_batch_max_lines)
        except _BadLines as bad:
            batch = replace(batch, status="failed", errors=json.loads(str(bad)), in_progress_at=None, failed_at=now)
            repo.insert_batch(conn, batch)
            logger.info("batch refused at validation", batch_id=batch.id, errors=len(batch.errors or []))
            _announce(batch)
            return Batch.of(batch, repo.counts(conn, batch_id=batch.id, total=0)[0])
    send_then_mark(fresh)
    count("JobsAccepted", len(fresh))
    logger.info("batch accepted", batch_id=batch.id, lines=batch.total, standard_lane=len(fresh))
    return get_batch(tenant_id=principal.tenant_id, batch_id=batch.id)


@dataclass
class _Pending:
    """Checked lines waiting to be stored, a chunk at a time (one cache round trip and one insert pipeline)."""

    conn: Connection
    month: date | None
    jobs: list[tuple[Job, int, bool, Decimal | None]] = field(default_factory=list)
    fresh: list[tuple[str, str]] = field(default_factory=list)
    total: Decimal = Decimal(0)

    def add(self, job: Job, ttl: int, caching: bool, amount: Decimal | None) -> None:
        self.jobs.append((job, ttl, caching, amount))
        if len(self.jobs) >= STORE_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Store the chunk: cache hits answered (free), the others carrying their share of the reservation."""
        hits = cached_results(self.conn, jobs=[(job, ttl) for job, ttl, caching, _ in self.jobs if caching])
        rows = []
        for job, _, _, amount in self.jobs:
            if job.id in hits:
                rows.append(cache_hit_job(job, hits[job.id]))
                continue
            rows.append(budgets.Reservation(api_key_id=job.api_key_id, amount=amount, month=self.month).on(job))
            self.total += amount or Decimal(0)
            if job.lane == "standard":
                self.fresh.append((job.id, job.priority))
        job_bulk_repo.insert_new_jobs(self.conn, rows)
        if hits:
            count("CacheHits", len(hits))
        self.jobs = []


def _store_lines(
    conn: Connection, principal: Principal, batch: StoredBatch, source: StoredFile, max_lines: int
) -> tuple[StoredBatch, list[tuple[str, str]]]:
    """Every line's job, in the caller's transaction; raises `_BadLines` (JSON of the errors) to roll back."""
    errors: list[BatchError] = []
    seen: set[str] = set()
    targets: dict[str, chat.ChatTarget] = {}
    budgeted = principal.monthly_budget_usd is not None and principal.key_id is not None
    pending = _Pending(conn, budgets.month_of_now() if budgeted else None)
    lines = 0
    repo.insert_batch(conn, batch)
    for number, raw in openai_files.lines(source.object_key, max_bytes=max(source.bytes, 1)):
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
        lines += 1
        if lines > max_lines:
            errors.append(BatchError(code="too_many_tasks", message=f"a batch takes at most {max_lines:,} requests",
                                     line=number))  # fmt: skip
            break
        parsed = _parse_line(number, raw, seen)
        if isinstance(parsed, BatchError):
            errors.append(parsed)
            continue
        try:
            request = parse_chat(parsed.body)
        except ValidationFailed as exc:
            errors.append(_refusal(number, parsed.custom_id, exc))
            continue
        if errors:  # after the first bad line, only what needs no lookup is checked (cheap)
            continue
        try:
            job, target, caching = _job_of(principal, parsed, request, number, targets, batch)
            amount = budgets.worst_case_or_refuse(template=target.template, job=job, budgeted=budgeted)
        except PromptLabError as exc:
            errors.append(_refusal(number, parsed.custom_id, exc))
            continue
        pending.add(job, target.template.cache_ttl_seconds, caching, amount if budgeted else None)
    if lines == 0:
        errors.append(BatchError(code="empty_file", message=f"the input file {source.id} has no requests"))
    if errors:
        raise _BadLines(json.dumps([e.model_dump() for e in errors]))
    pending.flush()
    reservation = budgets.reserve_total(conn, principal=principal, amount=pending.total,
                                        what=f"this batch ({lines:,} requests)")  # fmt: skip
    _charge_lines(principal, lines)
    held = pending.total if reservation.amount is not None else 0
    conn.execute("UPDATE openai_batches SET total = %s, reserved_usd = %s, budget_month = %s WHERE id = %s",
                 (lines, held, reservation.month, batch.id))  # fmt: skip
    return replace(batch, total=lines), pending.fresh


def _charge_lines(principal: Principal, lines: int) -> None:
    """A key's `--rpm` counts every line (the request itself was counted at the door)."""
    if principal.key_id is None or not principal.rpm_limit:
        return
    decision = request_limits.check_items(key_id=principal.key_id, key_limit=principal.rpm_limit, items=lines - 1)
    if decision is not None and not decision.admitted:
        raise RateLimited(
            f"this batch's {lines:,} requests are over the key's rate limit of {decision.limit} a window;"
            f" retry in {decision.reset_seconds} s or split the file",
            headers={**decision.headers(), "Retry-After": str(decision.reset_seconds)},
        )


# --- reading, cancelling and ending a batch --------------------------------------------------------------


def _stored_batch(conn: Connection, tenant_id: str, batch_id: str) -> StoredBatch:
    stored = repo.get_batch(conn, tenant_id=tenant_id, batch_id=batch_id)
    if stored is None:
        raise _batch_not_found(batch_id)
    return stored


def get_batch(*, tenant_id: str, batch_id: str) -> Batch:
    with connection() as conn:
        stored = _stored_batch(conn, tenant_id, batch_id)
    return _refresh(stored)


def list_batches(*, tenant_id: str, after: str | None, limit: int) -> BatchList:
    with connection() as conn:
        page = repo.list_batches(conn, tenant_id=tenant_id, after=after, limit=limit)
    data = [_refresh(b) for b in page[:limit]]
    return BatchList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                     has_more=len(page) > limit)  # fmt: skip


def cancel_batch(*, tenant_id: str, batch_id: str) -> Batch:
    """Stop a batch: lines not yet taken by a provider are cancelled (their reservations released); lines
    already running finish and are kept. `cancelling` until the last one ends, then `cancelled`."""
    with connection() as conn, conn.transaction():
        stored = _stored_batch(conn, tenant_id, batch_id)
        moved = repo.move(conn, batch_id=batch_id, before=("in_progress",), after="cancelling",
                          stamp="cancelling_at")  # fmt: skip
        if moved is None and stored.status != "cancelling":
            raise Conflict(
                f"batch {batch_id} is {stored.status} and cannot be cancelled", details={"param": "batch_id"}
            )
        cancelled = repo.cancel_waiting_lines(conn, batch_id=batch_id)
    logger.info("batch cancelling", batch_id=batch_id, lines_cancelled=cancelled)
    return get_batch(tenant_id=tenant_id, batch_id=batch_id)


def _refresh(stored: StoredBatch) -> Batch:
    """The batch as it stands, ended (its files written) when its last line has ended."""
    with connection() as conn:
        counts, still_open = repo.counts(conn, batch_id=stored.id, total=stored.total)
    stale = stored.status == "finalizing" and (stored.finalizing_at or utc_now()) < utc_now() - STALE_FINALIZING
    if (stored.status in ("in_progress", "cancelling") and still_open == 0) or stale:
        stored = _finalize(stored)
    return Batch.of(stored, counts)


def _finalize(stored: StoredBatch) -> StoredBatch:
    with connection() as conn:
        taken = repo.take_for_finalizing(conn, batch_id=stored.id, stale_seconds=int(STALE_FINALIZING.total_seconds()))
    if taken is None:  # another reader or the sweeper is writing its files
        return stored
    output_id, error_id, expired = openai_batch_results.write_files(stored)
    ending = "cancelled" if stored.cancelling_at is not None else "expired" if expired else "completed"
    with connection() as conn, conn.transaction():
        repo.set_result_files(conn, batch_id=stored.id, output_file_id=output_id, error_file_id=error_id)
        ended = repo.move(conn, batch_id=stored.id, before=("finalizing",), after=ending, stamp=f"{ending}_at")
    if ended is None:
        return stored
    logger.info("batch ended", batch_id=stored.id, status=ending)
    _announce(ended)
    return ended


def _announce(batch: StoredBatch) -> None:
    tenant_events.publish(tenant_id=batch.tenant_id, event=f"batch.{batch.status}", data={"id": batch.id})


def sweep(*, limit: int = 100) -> int:
    """The sweeper's step: end batches whose last line ended, and drop files past their retention."""
    with connection() as conn:
        open_ = repo.open_batches(conn, limit=limit)
    for stored in open_:
        try:
            _refresh(stored)
        except PromptLabError:
            logger.exception("a batch could not be ended now; the next sweep tries again", batch_id=stored.id)
    openai_files.purge_expired_files()
    return 0
