"""Every SQL statement about experiments: the experiment, its jobs' figures, its scores, its judge hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from promptlab.db.connection import Connection, Row
from promptlab.models.experiments import ExperimentStatus, StoredScorer, StoredVariant
from promptlab.models.jobs import Job

TERMINAL = "('completed', 'failed', 'cancelled')"


@dataclass(frozen=True, slots=True)
class Experiment:
    """A row of `experiments`, typed."""

    id: str
    tenant_id: str
    api_key_id: str | None
    name: str | None
    dataset_id: str
    dataset_version: int
    variants: list[StoredVariant]
    scorers: list[StoredScorer]
    priority: str
    row_numbers: list[int] | None
    row_count: int
    status: ExperimentStatus
    judge_reserved_usd: Decimal
    judge_row_usd: Decimal | None
    budget_month: date | None
    created_at: datetime
    ended_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> Experiment:
        return cls(**{
            **row,
            "variants": [StoredVariant.model_validate(v) for v in row["variants"]],
            "scorers": [StoredScorer.from_stored(s) for s in row["scorers"]],
        })  # fmt: skip

    @property
    def judges(self) -> list[StoredScorer]:
        """The scorers that call a judge template."""
        return [s for s in self.scorers if s.judge is not None]


@dataclass(frozen=True, slots=True)
class Score:
    """One scorer's verdict on one variant's answer to one row."""

    variant: int
    row_n: int
    scorer: str
    score: Decimal | None = None
    error: str | None = None
    judge_job_id: str | None = None


def insert_experiment(conn: Connection, experiment: Experiment) -> None:
    values = {
        **{name: getattr(experiment, name) for name in Experiment.__slots__},
        "variants": Jsonb([v.model_dump(by_alias=True) for v in experiment.variants]),
        "scorers": Jsonb([s.stored() for s in experiment.scorers]),
        "row_numbers": None if experiment.row_numbers is None else Jsonb(experiment.row_numbers),
    }
    columns = [c for c in Experiment.__slots__ if c != "ended_at"]
    conn.execute(
        f"INSERT INTO experiments ({', '.join(columns)}) VALUES ({', '.join(f'%({c})s' for c in columns)})".encode(),
        values,
    )


def get_experiment(
    conn: Connection, *, tenant_id: str | None, experiment_id: str, lock: bool = False
) -> Experiment | None:
    """The experiment (of the tenant, when one is named); `lock` holds its row until the transaction ends."""
    sql = "SELECT * FROM experiments WHERE id = %s"
    params: list[Any] = [experiment_id]
    if tenant_id is not None:
        sql += " AND tenant_id = %s"
        params.append(tenant_id)
    row = conn.execute((sql + (" FOR UPDATE" if lock else "")).encode(), params).fetchone()
    return Experiment.from_row(row) if row is not None else None


def running_count(conn: Connection, *, tenant_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM experiments WHERE tenant_id = %s AND status = 'running'", (tenant_id,)
    ).fetchone()
    return int(row["n"]) if row else 0


def list_experiments(conn: Connection, *, tenant_id: str, limit: int, after_id: str | None) -> list[Experiment]:
    sql = "SELECT * FROM experiments WHERE tenant_id = %s"
    params: list[Any] = [tenant_id]
    if after_id:
        sql += " AND id < %s"
        params.append(after_id)
    params.append(limit)
    return [Experiment.from_row(r) for r in conn.execute((sql + " ORDER BY id DESC LIMIT %s").encode(), params)]


def dataset_rows(conn: Connection, *, dataset_id: str, version: int, numbers: list[int] | None) -> list[Row]:
    """The rows an experiment runs over (`n`, `input`, `expected`), in order."""
    if numbers is None:
        return conn.execute(
            "SELECT n, input, expected FROM dataset_rows WHERE dataset_id = %s AND version = %s ORDER BY n",
            (dataset_id, version),
        ).fetchall()
    return conn.execute(
        "SELECT n, input, expected FROM dataset_rows WHERE dataset_id = %s AND version = %s AND n = ANY(%s) ORDER BY n",
        (dataset_id, version, numbers),
    ).fetchall()


def dataset_row(conn: Connection, *, experiment: Experiment, n: int) -> Row | None:
    return conn.execute(
        "SELECT n, input, expected FROM dataset_rows WHERE dataset_id = %s AND version = %s AND n = %s",
        (experiment.dataset_id, experiment.dataset_version, n),
    ).fetchone()


def variant_figures(conn: Connection, *, experiment_id: str) -> list[Row]:
    """Per variant: its own jobs' counts, cost, tokens and latency percentiles, and what judging it cost."""
    return conn.execute(
        "SELECT experiment_variant AS variant,"
        " count(*) FILTER (WHERE experiment_scorer IS NULL) AS jobs,"
        " count(*) FILTER (WHERE experiment_scorer IS NULL AND status = 'completed') AS completed,"
        " count(*) FILTER (WHERE experiment_scorer IS NULL AND status IN ('failed', 'cancelled')) AS failed,"
        " coalesce(sum(estimated_cost_usd) FILTER (WHERE experiment_scorer IS NULL), 0) AS cost_usd,"
        " coalesce(sum(estimated_cost_usd) FILTER (WHERE experiment_scorer IS NOT NULL), 0) AS judge_cost_usd,"
        " coalesce(sum(input_tokens) FILTER (WHERE experiment_scorer IS NULL AND NOT cache_hit), 0) AS input_tokens,"
        " coalesce(sum(output_tokens) FILTER (WHERE experiment_scorer IS NULL AND NOT cache_hit), 0) AS output_tokens,"
        " percentile_disc(0.5) WITHIN GROUP (ORDER BY provider_latency_ms)"
        "   FILTER (WHERE experiment_scorer IS NULL AND NOT cache_hit) AS p50,"
        " percentile_disc(0.95) WITHIN GROUP (ORDER BY provider_latency_ms)"
        "   FILTER (WHERE experiment_scorer IS NULL AND NOT cache_hit) AS p95,"
        f" count(*) FILTER (WHERE status IN {TERMINAL}) AS ended, count(*) AS all_jobs"
        " FROM jobs WHERE experiment_id = %s GROUP BY experiment_variant ORDER BY experiment_variant",
        (experiment_id,),
    ).fetchall()


def score_figures(conn: Connection, *, experiment_id: str) -> list[Row]:
    """Per variant and scorer: the mean score, how many rows were scored, and how many could not be."""
    return conn.execute(
        "SELECT variant, scorer, avg(score)::float AS mean, count(score) AS scored,"
        " count(*) FILTER (WHERE error IS NOT NULL) AS errors"
        " FROM experiment_scores WHERE experiment_id = %s GROUP BY variant, scorer",
        (experiment_id,),
    ).fetchall()


def has_open_jobs(conn: Connection, *, experiment_id: str) -> bool:
    """Whether any job of the experiment (judges included) is still queued or processing (an index probe)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE experiment_id = %s AND status IN ('queued', 'processing')) AS open",
        (experiment_id,),
    ).fetchone()
    return bool(row and row["open"])


_UNSCORED = (
    "FROM jobs j WHERE j.experiment_id = %s AND j.experiment_scorer IS NULL AND j.status = 'completed'"
    " AND NOT EXISTS (SELECT 1 FROM experiment_scores s WHERE s.experiment_id = j.experiment_id"
    " AND s.variant = j.experiment_variant AND s.row_n = j.experiment_row)"
)


def unfinished(conn: Connection, *, experiment_id: str, scored: bool) -> int:
    """What keeps the experiment running: jobs still queued or processing, judges' verdicts still to come,
    and (when it has scorers) answers not scored yet."""
    unscored = f"(SELECT count(*) {_UNSCORED})" if scored else "0"
    row = conn.execute(
        f"SELECT (SELECT count(*) FROM jobs WHERE experiment_id = %s AND status NOT IN {TERMINAL})"
        " + (SELECT count(*) FROM experiment_scores WHERE experiment_id = %s AND score IS NULL AND error IS NULL)"
        f" + {unscored} AS n".encode(),
        (experiment_id, experiment_id, *([experiment_id] if scored else [])),
    ).fetchone()
    assert row is not None
    return int(row["n"])


def unscored_jobs(conn: Connection, *, experiment_id: str, limit: int) -> list[Job]:
    """Completed answers of the experiment's variants that have no score yet."""
    rows = conn.execute(f"SELECT j.* {_UNSCORED} LIMIT %s".encode(), (experiment_id, limit)).fetchall()
    return [Job.from_row(r) for r in rows]


def save_scores(conn: Connection, *, experiment_id: str, scores: list[Score]) -> None:
    """Record scores (a score given again, after a retry, replaces the earlier one)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO experiment_scores (experiment_id, variant, row_n, scorer, score, error, judge_job_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (experiment_id, variant, row_n, scorer) DO UPDATE"
            " SET score = EXCLUDED.score, error = EXCLUDED.error, judge_job_id = EXCLUDED.judge_job_id,"
            " scored_at = now()",
            [(experiment_id, s.variant, s.row_n, s.scorer, s.score, s.error, s.judge_job_id) for s in scores],
        )


def judged_by(conn: Connection, *, judge_job_id: str) -> Row | None:
    """The score a judge's job gives: (experiment_id, variant, row_n, scorer)."""
    return conn.execute(
        "SELECT experiment_id, variant, row_n, scorer FROM experiment_scores WHERE judge_job_id = %s",
        (judge_job_id,),
    ).fetchone()


def take_judge_hold(conn: Connection, *, experiment_id: str, amount: Decimal) -> bool:
    """Move `amount` of the experiment's judge hold to a judge's job; False when it does not hold that much."""
    cur = conn.execute(
        "UPDATE experiments SET judge_reserved_usd = judge_reserved_usd - %s"
        " WHERE id = %s AND judge_reserved_usd >= %s",
        (amount, experiment_id, amount),
    )
    return cur.rowcount == 1


def end_experiment(conn: Connection, *, experiment_id: str, status: ExperimentStatus) -> Decimal | None:
    """Mark a running experiment ended; returns the judge hold it still had (to release), None when it had
    already ended."""
    row = conn.execute(
        "UPDATE experiments e SET status = %s, ended_at = now(), judge_reserved_usd = 0"
        " FROM (SELECT judge_reserved_usd FROM experiments WHERE id = %s FOR UPDATE) old"
        " WHERE e.id = %s AND e.status = 'running' RETURNING old.judge_reserved_usd",
        (status, experiment_id, experiment_id),
    ).fetchone()
    return None if row is None else Decimal(row["judge_reserved_usd"])


def claim_unsent(conn: Connection, *, experiment_id: str, limit: int) -> list[Row]:
    """Take the experiment's next jobs waiting for their turn on the queue (row by row) to send them; a claim
    older than a minute (its feeder died before sending) is taken again."""
    return conn.execute(
        "UPDATE jobs SET send_claimed_at = now() WHERE id IN (SELECT id FROM jobs WHERE experiment_id = %s"
        " AND status = 'queued' AND enqueued_at IS NULL AND lane = 'standard'"
        " AND (send_claimed_at IS NULL OR send_claimed_at < now() - interval '1 minute')"
        " ORDER BY experiment_scorer IS NULL, experiment_row, experiment_variant LIMIT %s"
        " FOR UPDATE SKIP LOCKED) RETURNING id, priority",
        (experiment_id, limit),
    ).fetchall()


def lock_feeding(conn: Connection, *, experiment_id: str) -> None:
    """Hold the experiment's feeding lock until the caller's transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('experiment-feed:' || %s))", (experiment_id,))


def in_flight(conn: Connection, *, experiment_id: str) -> int:
    """The experiment's jobs (its judges' too) on the queue or running, or claimed to be sent a moment ago."""
    row = conn.execute(
        "SELECT count(*) AS n FROM jobs WHERE experiment_id = %s AND status IN ('queued', 'processing')"
        " AND (enqueued_at IS NOT NULL OR send_claimed_at > now() - interval '1 minute')",
        (experiment_id,),
    ).fetchone()
    assert row is not None
    return int(row["n"])


def stalled_experiments(conn: Connection, *, older_than_seconds: int, limit: int) -> list[str]:
    """Running experiments with jobs that have waited their turn for long (a feeder that never ran)."""
    rows = conn.execute(
        "SELECT DISTINCT j.experiment_id FROM jobs j JOIN experiments e ON e.id = j.experiment_id"
        " WHERE j.experiment_id IS NOT NULL AND j.status = 'queued' AND j.enqueued_at IS NULL"
        " AND e.status = 'running' AND j.created_at < now() - make_interval(secs => %s) LIMIT %s",
        (older_than_seconds, limit),
    ).fetchall()
    return [r["experiment_id"] for r in rows]


def cancel_jobs(conn: Connection, *, experiment_id: str) -> list[str]:
    """Cancel the experiment's jobs not yet started; returns their ids."""
    rows = conn.execute(
        "UPDATE jobs SET status = 'cancelled', completed_at = now(), updated_at = now()"
        " WHERE experiment_id = %s AND status = 'queued' RETURNING id",
        (experiment_id,),
    ).fetchall()
    return [r["id"] for r in rows]


def results(
    conn: Connection, *, experiment: Experiment, after_row: int = 0, rows: int | None = None,
    output_chars: int | None = None,
) -> list[Row]:  # fmt: skip
    """Each row's input and expected joined with every variant's job and scores, row by row in variant order:
    `rows` rows after row `after_row`; outputs cut to `output_chars` (with `output_md5` of the whole)."""
    output = "j.output" if output_chars is None else "left(j.output, %s) AS output, md5(j.output) AS output_md5"
    sql = (
        f"SELECT r.n, r.input, r.expected, j.experiment_variant AS variant, j.id AS job_id, j.status, {output},"
        " j.estimated_cost_usd, j.provider_latency_ms, j.cache_hit, j.error,"
        " (SELECT jsonb_object_agg(s.scorer, jsonb_build_object('score', s.score, 'error', s.error))"
        "    FROM experiment_scores s WHERE s.experiment_id = j.experiment_id AND s.variant = j.experiment_variant"
        "    AND s.row_n = r.n) AS scores"
        " FROM jobs j JOIN dataset_rows r ON r.dataset_id = %s AND r.version = %s AND r.n = j.experiment_row"
        " WHERE j.experiment_id = %s AND j.experiment_scorer IS NULL AND j.experiment_row > %s"
    )
    params: list[Any] = [] if output_chars is None else [output_chars]
    params += [experiment.dataset_id, experiment.dataset_version, experiment.id, after_row]
    if rows is not None:
        sql += " AND j.experiment_row <= (SELECT max(n) FROM (SELECT n FROM dataset_rows WHERE dataset_id = %s"
        sql += " AND version = %s AND n > %s ORDER BY n LIMIT %s) page)"
        params += [experiment.dataset_id, experiment.dataset_version, after_row, rows]
    sql += " ORDER BY j.experiment_row, j.experiment_variant"
    return conn.execute(sql.encode(), params).fetchall()
