"""An experiment as it runs: its jobs scored as they end, its judges asked, its next rows sent (its window),
and the experiment ended when all is done.

The worker calls `job_ended` after a job of an experiment ends; reading the experiment (`settle`) catches up
what a crash between a job's end and that call missed, and the sweeper restarts a window nobody fed, so no
experiment stays running for want of a hook. A scorer error is recorded on its row, never failing the
experiment.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

from promptlab.core.errors import NotFound, PromptLabError, ValidationFailed
from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.db import experiments_repo, jobs_repo
from promptlab.db.connection import Connection, Row, connection
from promptlab.db.experiments_repo import Experiment, Score
from promptlab.experiments import scorers
from promptlab.jobs import job_hooks
from promptlab.jobs.lifecycle import send_then_mark
from promptlab.jobs.requests import new_job
from promptlab.models.experiments import StoredScorer
from promptlab.models.generation import GenerateRequest, ResponseFormat
from promptlab.models.jobs import Job
from promptlab.models.templates import Template
from promptlab.templates.service import template_for_generation
from promptlab.tenancy import budgets
from promptlab.tenancy.auth import Principal

# A judge is shown at most 4 UTF-8 bytes per output token the variant allowed, and 80,000 bytes in all, so
# what judging can cost is known before the experiment starts.
JUDGE_BYTES_PER_TOKEN = 4
JUDGE_OUTPUT_MAX_BYTES = 80_000
SETTLE_BATCH = 500


def judged_output_bytes(max_tokens: int) -> int:
    """The most of an output a judge is shown, for a variant allowed `max_tokens`."""
    return min(JUDGE_OUTPUT_MAX_BYTES, JUDGE_BYTES_PER_TOKEN * max_tokens)


def judge_values(*, row_input: Any, expected: Any, output: str, max_tokens: int = 0) -> dict[str, str]:
    """What a judge template's `{{ input }}`, `{{ expected }}` and `{{ output }}` receive (the output cut to
    `judged_output_bytes(max_tokens)` bytes, on a character boundary)."""
    shown = output.encode()[: judged_output_bytes(max_tokens)].decode("utf-8", "ignore")
    return {
        "input": json.dumps(row_input, ensure_ascii=False, sort_keys=True),
        "expected": "" if expected is None else expected if isinstance(expected, str) else json.dumps(expected),
        "output": shown,
    }


def judge_request(experiment: Experiment, judge: StoredScorer, values: dict[str, str]) -> GenerateRequest:
    """The generation a judge makes for one output: JSON mode, `{"score": 0..1}`."""
    fmt = scorers.JUDGE_FORMAT
    settings = judge.judge
    assert settings is not None and judge.template_ref is not None, "a judge's template is resolved when stored"
    return GenerateRequest(
        template_id=judge.template_ref,
        provider=settings.provider,
        model=settings.model,
        input=values,
        response_format=ResponseFormat.model_validate({"type": "json_schema", "schema": fmt["schema"]}),
        priority="low" if experiment.priority == "economy" else experiment.priority,
    )


def _start_judge(
    conn: Connection, *, experiment: Experiment, judge: StoredScorer, job: Job, row: Row
) -> tuple[Score, Job | None]:
    """Make the judge's job for one output (its worst case moved from the experiment's hold)."""
    values = judge_values(
        row_input=row["input"], expected=row["expected"], output=job.output or "", max_tokens=job.max_tokens
    )
    principal = Principal(tenant_id=experiment.tenant_id, key_id=experiment.api_key_id)
    request = judge_request(experiment, judge, values)
    variant, n, name = job.experiment_variant or 0, row["n"], judge.name
    try:
        template = template_for_generation(tenant_id=experiment.tenant_id, template_id=request.template_id)
        made = new_job(template=template, principal=principal, request=request)
        made = replace(made, experiment_id=experiment.id, experiment_variant=variant, experiment_row=n)
        made = replace(made, experiment_scorer=name, api_key_id=experiment.api_key_id)
        with conn.transaction():
            bound = judge.worst_case_usd or Decimal(0)
            if experiment.api_key_id and experiment.budget_month and experiment.judge_row_usd is not None:
                if not experiments_repo.take_judge_hold(conn, experiment_id=experiment.id, amount=bound):
                    return Score(variant, n, name, error="the experiment holds no budget for this judge"), None
                reservation = budgets.move_hold(
                    conn, key_id=experiment.api_key_id, month=experiment.budget_month, held=bound,
                    template=template, job=made,
                )  # fmt: skip
                made = reservation.on(made)
            stored = jobs_repo.insert_job(conn, made)
            experiments_repo.save_scores(
                conn, experiment_id=experiment.id, scores=[Score(variant, n, name, judge_job_id=stored.id)]
            )
    except PromptLabError as exc:  # a judge template gone, a budget that moved: the row records why
        return Score(variant, n, name, error=f"{exc.code}: {exc.message}"[:500]), None
    return Score(variant, n, name, judge_job_id=stored.id), stored


def score_jobs(experiment: Experiment, jobs: list[Job]) -> None:
    """Score these ended jobs of the experiment's variants (in place, or by starting their judges)."""
    done = [j for j in jobs if j.status == "completed" and j.experiment_scorer is None]
    if not done or not experiment.scorers:
        return
    with connection() as conn:
        rows = {
            r["n"]: r
            for r in experiments_repo.dataset_rows(
                conn, dataset_id=experiment.dataset_id, version=experiment.dataset_version,
                numbers=sorted({j.experiment_row or 0 for j in done}),
            )
        }  # fmt: skip
        scores: list[Score] = []
        for job in done:
            row = rows.get(job.experiment_row or 0)
            if row is None:
                continue
            for scorer in experiment.scorers:
                if scorer.judge is not None:
                    continue
                try:
                    value = scorers.score(scorer.settings, output=job.output or "", expected=row["expected"])
                    scores.append(Score(job.experiment_variant or 0, row["n"], scorer.name, score=value))
                except scorers.CannotScore as exc:
                    scores.append(Score(job.experiment_variant or 0, row["n"], scorer.name, error=str(exc)))
        if experiment.status == "running":  # its judges wait their turn in the window, like its rows (`feed`)
            for job in done:
                row = rows.get(job.experiment_row or 0)
                for judge in experiment.judges if row is not None else []:
                    assert row is not None
                    score, made = _start_judge(conn, experiment=experiment, judge=judge, job=job, row=row)
                    if made is None:
                        scores.append(score)
        experiments_repo.save_scores(conn, experiment_id=experiment.id, scores=scores)


def _judge_ended(job: Job) -> None:
    with connection() as conn:
        found = experiments_repo.judged_by(conn, judge_job_id=job.id)
        if found is None:
            return
        score = Score(found["variant"], found["row_n"], found["scorer"], judge_job_id=job.id)
        if job.status == "completed":
            try:
                score = replace(score, score=scorers.judge_score(job.output))
            except scorers.CannotScore as exc:
                score = replace(score, error=str(exc))
        else:
            code = (job.error or {}).get("code", job.status)
            score = replace(score, error=f"the judge's job ended {job.status} ({code})")
        experiments_repo.save_scores(conn, experiment_id=found["experiment_id"], scores=[score])


def feed(experiment_id: str, *, refill_below: int | None = None) -> int:
    """Bring the experiment's jobs on the queue back to its window (judges waiting first, then the next rows
    in order: judges and variants share one window); with
    `refill_below`, only once fewer than that are left, so the messages go out in SQS batches of ten rather
    than one per job that ended. Returns how many were sent."""
    window = get_settings().experiment_window
    # One feeder of an experiment at a time: the jobs ending in one batch each call this at once, and two
    # counting before either claims would both fill the window.
    with connection() as conn, conn.transaction():
        experiments_repo.lock_feeding(conn, experiment_id=experiment_id)
        flying = experiments_repo.in_flight(conn, experiment_id=experiment_id)
        if refill_below is not None and flying >= refill_below:
            return 0
        if flying >= window:
            return 0
        due = experiments_repo.claim_unsent(conn, experiment_id=experiment_id, limit=window - flying)
    return len(send_then_mark([(r["id"], r["priority"]) for r in due]))


def finish_if_done(experiment_id: str) -> bool:
    """End the experiment once every job and judge has ended, giving back what it still holds; True if it
    ended now."""
    with connection() as conn, conn.transaction():
        if experiments_repo.has_open_jobs(conn, experiment_id=experiment_id):  # the common case: no lock taken
            return False
        experiment = experiments_repo.get_experiment(conn, tenant_id=None, experiment_id=experiment_id, lock=True)
        if experiment is None or experiment.status != "running":
            return False
        if experiments_repo.unfinished(conn, experiment_id=experiment_id, scored=bool(experiment.scorers)):
            return False
        held = experiments_repo.end_experiment(conn, experiment_id=experiment_id, status="completed")
        budgets.release_amount(
            conn, key_id=experiment.api_key_id, month=experiment.budget_month, amount=held or Decimal(0)
        )
    logger.info("experiment completed", experiment_id=experiment_id)
    return True


def job_ended(job_id: str, ended: Job | None = None) -> None:
    """After a job of an experiment ended (`ended`: the job as its end left it, when the caller has it):
    score it (or its judge's verdict), send the experiment's next jobs, and end the experiment if that was
    the last. Best effort: a failure is logged, and reading the experiment catches up what was missed."""
    try:
        with connection() as conn:
            job = ended or jobs_repo.get_job_any_tenant(conn, job_id=job_id)
            experiment = (
                experiments_repo.get_experiment(conn, tenant_id=None, experiment_id=job.experiment_id)
                if job is not None and job.experiment_id
                else None
            )
        if job is None or experiment is None:
            return
        if job.experiment_scorer is not None:
            _judge_ended(job)
        else:
            score_jobs(experiment, [job])
        if experiment.status == "running":  # after scoring: the judges it made wait in the same window
            feed(experiment.id, refill_below=max(1, get_settings().experiment_window // 2))
        finish_if_done(experiment.id)
    except Exception:  # noqa: BLE001 - the job itself is done; its scoring is caught up when the experiment is read
        logger.exception("experiment scoring failed; it is retried when the experiment is read", job_id=job_id)


def settle(experiment: Experiment) -> None:
    """What the worker's hooks do, for an experiment whose hook was missed (a crash between a job's end and
    its scoring): a window sent again when nothing of it is on the queue, and, once no job is open, the
    answers not scored yet scored and the experiment ended. Cheap when nothing was missed (index probes)."""
    if experiment.status != "running":
        return
    with connection() as conn:
        flying = experiments_repo.in_flight(conn, experiment_id=experiment.id)
        open_jobs = experiments_repo.has_open_jobs(conn, experiment_id=experiment.id)
        missing = (
            experiments_repo.unscored_jobs(conn, experiment_id=experiment.id, limit=SETTLE_BATCH)
            if not open_jobs and experiment.scorers
            else []
        )
    if flying == 0 and open_jobs:
        feed(experiment.id)
    if missing:
        score_jobs(experiment, missing)
    if not open_jobs:
        finish_if_done(experiment.id)


def require(conn: Connection, *, tenant_id: str, experiment_id: str, lock: bool = False) -> Experiment:
    """The tenant's experiment, or 404."""
    found = experiments_repo.get_experiment(conn, tenant_id=tenant_id, experiment_id=experiment_id, lock=lock)
    if found is None:
        raise NotFound(f"experiment {experiment_id!r} not found", details={"experimentId": experiment_id})
    return found


STALLED_AFTER_SECONDS = 60  # an experiment's jobs wait their turn for a while by design: only then is it stalled


def _on_job_ended(job: Job, ended: Job | None) -> None:
    if job.experiment_id is not None:
        job_ended(job.id, ended)


def feed_stalled(limit: int = 500) -> int:
    """Send the window of each running experiment whose feeder never ran (a worker died after a job ended);
    the messages sent."""
    with connection() as conn:
        stalled = experiments_repo.stalled_experiments(conn, older_than_seconds=STALLED_AFTER_SECONDS, limit=limit)
    return sum(feed(experiment_id) for experiment_id in stalled)


def register_hooks() -> None:
    """Let the worker, the economy lane and the sweeper reach experiments (jobs cannot import them)."""
    job_hooks.on_job_ended(_on_job_ended)
    job_hooks.on_sweep(feed_stalled)


def judge_bounds(
    *, principal: Principal, templates_: list[Template], rows: list[Row], experiment: Experiment, max_tokens: int
) -> tuple[list[StoredScorer], Decimal]:
    """The experiment's scorers with each judge's worst case for one output, and what one row of one variant can
    cost in judging. The bound takes the dataset's longest row and the most of an output a judge is shown
    (`max_tokens`: the largest of the variants'). `templates_`: the judges' templates, in their order."""
    longest = [judge_values(row_input=r["input"], expected=r["expected"], output="") for r in rows]
    values = {
        "input": "x" * max((len(v["input"].encode()) for v in longest), default=0),
        "expected": "x" * max((len(v["expected"].encode()) for v in longest), default=0),
        "output": "x" * judged_output_bytes(max_tokens),
    }
    per_row = Decimal(0)
    budgeted = principal.monthly_budget_usd is not None
    judge_templates = iter(templates_)
    bounded: list[StoredScorer] = []
    for index, scorer in enumerate(experiment.scorers):
        if scorer.judge is None:
            bounded.append(scorer)
            continue
        template = next(judge_templates)
        request = judge_request(experiment, scorer, values)
        try:
            job = new_job(template=template, principal=principal, request=request)
        except ValidationFailed as exc:  # the judge's own template, with the longest inputs it may be given
            raise ValidationFailed.single(
                f"scorers[{index}].template", f"this judge template cannot judge these rows: {exc.message}"
            ) from exc
        amount = budgets.worst_case_or_refuse(template=template, job=job, budgeted=budgeted) or Decimal(0)
        bounded.append(replace(scorer, worst_case_usd=amount))
        per_row += amount
    return bounded, per_row
