"""Experiment use cases: start (every variant × every row as ordinary jobs, the whole worst case reserved up
front), read progress and figures, cancel, and promote a variant's template version to a label."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from decimal import Decimal

from promptlab.core import ids
from promptlab.core.clock import utc_now
from promptlab.core.errors import Conflict, FieldProblem, NotFound, RateLimited, ValidationFailed
from promptlab.core.json_types import JsonObject
from promptlab.core.observability import count, logger
from promptlab.core.pagination import decode_cursor, encode_cursor
from promptlab.core.settings import get_settings
from promptlab.db import datasets_repo, experiments_repo, jobs_repo
from promptlab.db.connection import Connection, Row, connection
from promptlab.db.experiments_repo import Experiment
from promptlab.experiments import runs as experiment_runs
from promptlab.experiments import scorers
from promptlab.jobs.accept import cache_hit_job, cached_result
from promptlab.jobs.lifecycle import send_then_mark
from promptlab.jobs.requests import new_job
from promptlab.models.experiments import (
    ExperimentCreate,
    ExperimentPage,
    ExperimentPublic,
    ExperimentSummary,
    JudgeScorer,
    LatencySummary,
    PromoteRequest,
    PromoteResult,
    StoredScorer,
    StoredVariant,
    VariantResult,
)
from promptlab.models.generation import GenerateRequest
from promptlab.models.jobs import Job
from promptlab.models.templates import Template
from promptlab.templates import service as templates
from promptlab.tenancy import budgets
from promptlab.tenancy.auth import Principal

MAX_JOBS = 20_000  # variants × rows of one experiment (a larger dataset runs with `sample`)
MAX_ROW_PROBLEMS = 20


def _template(principal: Principal, ref: str, field: str) -> Template:
    """The template version a reference names, resolved once (a label may move while the experiment runs)."""
    try:
        return templates.template_for_generation(tenant_id=principal.tenant_id, template_id=ref)
    except NotFound as exc:
        raise ValidationFailed.single(field, exc.message) from exc


def _dataset_rows(conn: Connection, *, tenant_id: str, request: ExperimentCreate) -> tuple[int, list[Row], bool]:
    """(dataset version, the rows to run, sampled?)."""
    dataset = datasets_repo.get_dataset(conn, tenant_id=tenant_id, dataset_id=request.dataset_id)
    if dataset is None:
        raise ValidationFailed.single("datasetId", f"no dataset {request.dataset_id!r}")
    version = request.dataset_version or dataset.current_version
    if not datasets_repo.version_exists(conn, dataset_id=dataset.id, version=version):
        raise ValidationFailed.single(
            "datasetVersion", f"dataset {dataset.id!r} has versions 1 to {dataset.current_version}"
        )
    rows = experiments_repo.dataset_rows(conn, dataset_id=dataset.id, version=version, numbers=None)
    sampled = request.sample is not None and request.sample < len(rows)
    if sampled:
        assert request.sample is not None
        rows = sorted(random.Random(f"{dataset.id}@{version}").sample(rows, request.sample), key=lambda r: r["n"])
    return version, rows, sampled


def _stored_scorers(principal: Principal, request: ExperimentCreate) -> tuple[list[StoredScorer], list[Template]]:
    """The scorers as stored (each named; a judge's template resolved to `tpl_…@version`), and the judges'
    templates in their order."""
    scorers.check_scorers(request.scorers)
    stored: list[StoredScorer] = []
    judges: list[Template] = []
    for index, scorer in enumerate(request.scorers):
        named = scorer.model_copy(update={"name": scorer.name or scorer.type})
        if isinstance(scorer, JudgeScorer):
            template = _template(principal, scorer.template, f"scorers[{index}].template")
            stored.append(StoredScorer(named, template_ref=f"{template.id}@{template.version}"))
            judges.append(template)
        else:
            stored.append(StoredScorer(named))
    return stored, judges


@dataclass
class _Plan:
    """The jobs an experiment will run and what they can cost at most."""

    jobs: list[tuple[Job, Template, Decimal | None]]
    variants: list[StoredVariant]


def _plan(*, principal: Principal, request: ExperimentCreate, experiment_id: str, rows: list[Row]) -> _Plan:
    """Every variant × row as a job (not stored); 422 naming each bad row's field."""
    problems: list[FieldProblem] = []
    planned: list[tuple[Job, Template, Decimal | None]] = []
    variants: list[StoredVariant] = []
    budgeted = principal.monthly_budget_usd is not None
    for index, variant in enumerate(request.variants):
        template = _template(principal, variant.template, f"variants[{index}].template")
        params = variant.params
        for row in rows:
            body = GenerateRequest(
                template_id=f"{template.id}@{template.version}", provider=variant.provider, model=variant.model,
                input=row["input"], max_tokens=params.max_tokens if params else None,
                temperature=params.temperature if params else None, priority=request.priority, cache=request.cache,
            )  # fmt: skip
            try:
                job = new_job(template=template, principal=principal, request=body)
            except ValidationFailed as exc:
                where = f"variants[{index}].rows[{row['n']}]"
                problems += [FieldProblem(field=f"{where}.{p.field}", message=p.message) for p in exc.fields]
                if len(problems) >= MAX_ROW_PROBLEMS:
                    break
                continue
            job = replace(job, experiment_id=experiment_id, experiment_variant=index, experiment_row=row["n"])
            amount = budgets.worst_case_or_refuse(template=template, job=job, budgeted=budgeted)
            planned.append((job, template, amount))
        if problems:
            break
        last = planned[-1][0] if rows else None  # this variant's last job: what its defaults resolved to
        variants.append(
            StoredVariant(
                template=variant.template, template_id=template.id, template_version=template.version,
                provider=last.provider if last else variant.provider,
                model=last.model if last else variant.model, params=last.params if last else {},
            )
        )  # fmt: skip
    if problems:
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems[:3])
        raise ValidationFailed(f"{len(problems)} row problem(s): {summary}", problems[:MAX_ROW_PROBLEMS])
    return _Plan(jobs=planned, variants=variants)


def _check_running(conn: Connection, *, tenant_id: str) -> None:
    """429 when the tenant already runs as many experiments as it may (each can hold 20,000 jobs)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"experiments:{tenant_id}",))
    limit = get_settings().max_running_experiments
    if experiments_repo.running_count(conn, tenant_id=tenant_id) >= limit:
        raise RateLimited(
            f"this tenant already runs {limit} experiments: wait for one to end (or cancel one)",
            headers={"Retry-After": "30"},
            details={"runningExperiments": limit},
        )


def create_experiment(*, principal: Principal, request: ExperimentCreate) -> ExperimentPublic:
    """Start an experiment: every variant over every (sampled) row as ordinary jobs."""
    experiment_id = ids.new_id("exp")
    stored_scorers, judge_templates = _stored_scorers(principal, request)
    with connection() as conn:
        version, rows, sampled = _dataset_rows(conn, tenant_id=principal.tenant_id, request=request)
    total_jobs = len(rows) * len(request.variants)
    judge_count = len(judge_templates)
    if total_jobs * (1 + judge_count) > MAX_JOBS:  # each judge asks once per variant's output
        raise ValidationFailed.single(
            "sample",
            f"{len(request.variants)} variants × {len(rows):,} rows × (1 + {judge_count} judges) is over"
            f" {MAX_JOBS:,} jobs: set `sample`",
        )
    plan = _plan(principal=principal, request=request, experiment_id=experiment_id, rows=rows)
    experiment = Experiment(
        id=experiment_id, tenant_id=principal.tenant_id, api_key_id=principal.key_id, name=request.name,
        dataset_id=request.dataset_id, dataset_version=version, variants=plan.variants, scorers=stored_scorers,
        priority=request.priority, row_numbers=[r["n"] for r in rows] if sampled else None, row_count=len(rows),
        status="running", judge_reserved_usd=Decimal(0), judge_row_usd=None, budget_month=None,
        created_at=utc_now(), ended_at=None,
    )  # fmt: skip
    bounded, judge_row = experiment_runs.judge_bounds(
        principal=principal, templates_=judge_templates, rows=rows, experiment=experiment,
        max_tokens=max((job.max_tokens for job, _, _ in plan.jobs), default=1),
    )  # fmt: skip
    judge_total = judge_row * total_jobs
    run_total = sum((a or Decimal(0) for _, _, a in plan.jobs), Decimal(0))
    hits: list[Job] = []
    fresh: list[tuple[str, str]] = []
    with connection() as conn, conn.transaction():
        _check_running(conn, tenant_id=principal.tenant_id)
        reservation = budgets.reserve_total(
            conn, principal=principal, amount=run_total + judge_total,
            what=f"this experiment ({total_jobs:,} jobs and their judges)",
        )  # fmt: skip
        held = reservation.amount is not None
        experiment = replace(
            experiment, scorers=bounded, judge_reserved_usd=judge_total if held else Decimal(0),
            judge_row_usd=judge_row if held else None, budget_month=reservation.month,
        )  # fmt: skip
        experiments_repo.insert_experiment(conn, experiment)
        for job, template, amount in plan.jobs:
            found = cached_result(conn, job=job, ttl_seconds=template.cache_ttl_seconds) if request.cache else None
            if found is not None:
                hit = replace(cache_hit_job(job, found), api_key_id=principal.key_id)
                jobs_repo.insert_cache_hit(conn, hit)
                hits.append(hit)
                if amount is not None:
                    budgets.release(conn, reservation=budgets.part(reservation, amount))
                continue
            stored = jobs_repo.insert_job(conn, budgets.part(reservation, amount).on(job))
            if stored.lane == "standard":
                fresh.append((stored.id, stored.priority))
    # The first window goes now, in SQS batches of 10; the rest follow one by one as jobs end (`feed`).
    send_then_mark(fresh[: get_settings().experiment_window])
    count("JobsAccepted", len(fresh))
    logger.info("experiment started", experiment_id=experiment_id, jobs=total_jobs, cache_hits=len(hits))
    if hits:
        experiment_runs.score_jobs(experiment, hits)
    return get_experiment(tenant_id=principal.tenant_id, experiment_id=experiment_id)


def _mean(figures: Row | None) -> float | None:
    return None if figures is None or figures["mean"] is None else round(float(figures["mean"]), 6)


def _variant_results(experiment: Experiment, figures: list[Row], score_rows: list[Row]) -> list[VariantResult]:
    by_variant = {int(f["variant"]): f for f in figures if f["variant"] is not None}
    results = []
    names = [s.name for s in experiment.scorers]
    for index, variant in enumerate(experiment.variants):
        f = by_variant.get(index, {})
        mine = {s["scorer"]: s for s in score_rows if s["variant"] == index}
        results.append(
            VariantResult(
                index=index, template=variant.template, template_id=variant.template_id,
                template_version=variant.template_version, provider=variant.provider, model=variant.model,
                rows=experiment.row_count, completed=f.get("completed", 0), failed=f.get("failed", 0),
                cost_usd=f.get("cost_usd", Decimal(0)), judge_cost_usd=f.get("judge_cost_usd", Decimal(0)),
                input_tokens=f.get("input_tokens", 0), output_tokens=f.get("output_tokens", 0),
                latency_ms=LatencySummary(p50=f.get("p50"), p95=f.get("p95")),
                scores={n: _mean(mine.get(n)) for n in names},
                scored={n: int(mine[n]["scored"]) if n in mine else 0 for n in names},
                score_errors={n: int(mine[n]["errors"]) if n in mine else 0 for n in names},
            )
        )  # fmt: skip
    return results


def public_scorers(experiment: Experiment) -> list[JsonObject]:
    return [s.public() for s in experiment.scorers]


def get_experiment(*, tenant_id: str, experiment_id: str) -> ExperimentPublic:
    """The experiment's status, progress and per-variant figures (scoring caught up first)."""
    with connection() as conn:
        experiment = experiment_runs.require(conn, tenant_id=tenant_id, experiment_id=experiment_id)
    if experiment.status == "running":
        experiment_runs.settle(experiment)
    with connection() as conn:
        experiment = experiment_runs.require(conn, tenant_id=tenant_id, experiment_id=experiment_id)
        figures = experiments_repo.variant_figures(conn, experiment_id=experiment_id)
        score_rows = experiments_repo.score_figures(conn, experiment_id=experiment_id)
    ended = sum(int(f["ended"]) for f in figures)
    all_jobs = sum(int(f["all_jobs"]) for f in figures)
    planned = experiment.row_count * len(experiment.variants) * (1 + len(experiment.judges))
    progress = 1.0 if experiment.status != "running" else ended / max(planned, all_jobs, 1)
    return ExperimentPublic(
        id=experiment.id, name=experiment.name, status=experiment.status,
        dataset_id=experiment.dataset_id, dataset_version=experiment.dataset_version,
        priority=experiment.priority,
        rows=experiment.row_count, scorers=public_scorers(experiment), progress=round(min(progress, 1.0), 4),
        cost_usd=sum((Decimal(f["cost_usd"]) + Decimal(f["judge_cost_usd"]) for f in figures), Decimal(0)),
        variants=_variant_results(experiment, figures, score_rows),
        created_at=experiment.created_at, ended_at=experiment.ended_at,
    )  # fmt: skip


def list_experiments(*, tenant_id: str, limit: int, cursor: str | None) -> ExperimentPage:
    with connection() as conn:
        found = experiments_repo.list_experiments(
            conn, tenant_id=tenant_id, limit=limit + 1, after_id=decode_cursor(cursor)
        )
    more = len(found) > limit
    found = found[:limit]
    items = [
        ExperimentSummary(
            id=e.id,
            name=e.name,
            status=e.status,
            dataset_id=e.dataset_id,
            dataset_version=e.dataset_version,
            rows=e.row_count,
            variants=len(e.variants),
            created_at=e.created_at,
            ended_at=e.ended_at,
        )  # fmt: skip
        for e in found
    ]
    return ExperimentPage(items=items, next_cursor=encode_cursor(found[-1].id) if more else None)


def cancel_experiment(*, tenant_id: str, experiment_id: str) -> ExperimentPublic:
    """Cancel the jobs not yet started (those running finish and are billed) and release what it holds."""
    with connection() as conn, conn.transaction():
        experiment = experiment_runs.require(conn, tenant_id=tenant_id, experiment_id=experiment_id, lock=True)
        if experiment.status != "running":
            raise Conflict(
                f"a {experiment.status} experiment cannot be cancelled",
                details={"experimentId": experiment_id, "status": experiment.status},
            )
        cancelled = experiments_repo.cancel_jobs(conn, experiment_id=experiment_id)
        held = experiments_repo.end_experiment(conn, experiment_id=experiment_id, status="cancelled")
        budgets.release_amount(
            conn, key_id=experiment.api_key_id, month=experiment.budget_month, amount=held or Decimal(0)
        )
    logger.info("experiment cancelled", experiment_id=experiment_id, jobs_cancelled=len(cancelled))
    return get_experiment(tenant_id=tenant_id, experiment_id=experiment_id)


def promote(*, principal: Principal, experiment_id: str, request: PromoteRequest) -> PromoteResult:
    """Point a label of the variant's template at the variant's version (the move names the experiment)."""
    with connection() as conn:
        experiment = experiment_runs.require(conn, tenant_id=principal.tenant_id, experiment_id=experiment_id)
    if experiment.status == "running":
        raise Conflict(
            "the experiment is still running: wait for it to end (or cancel it) before promoting a variant",
            details={"experimentId": experiment_id, "status": experiment.status},
        )
    if request.variant >= len(experiment.variants):
        raise ValidationFailed.single("variant", f"the experiment has variants 0 to {len(experiment.variants) - 1}")
    variant = experiment.variants[request.variant]
    template_id, version = variant.template_id, variant.template_version
    before = templates.list_labels(tenant_id=principal.tenant_id, template_id=template_id)
    previous = next((label.version for label in before.labels if label.label == request.label), None)
    templates.move_label(
        tenant_id=principal.tenant_id, template_id=template_id, label=request.label, version=version,
        moved_by=principal.key_name or principal.key_id, experiment_id=experiment_id,
    )  # fmt: skip
    logger.info("experiment variant promoted", experiment_id=experiment_id, label=request.label, version=version)
    return PromoteResult(
        experiment_id=experiment_id, template_id=template_id, label=request.label, version=version,
        previous_version=previous,
    )  # fmt: skip
