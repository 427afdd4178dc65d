"""An experiment's joined results (JSONL or CSV, page by page) and the comparison of two variants."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from promptlab.core.errors import ValidationFailed
from promptlab.core.money import money_str
from promptlab.core.pagination import decode_row_cursor, encode_row_cursor
from promptlab.db import experiments_repo
from promptlab.db.connection import Row, connection
from promptlab.db.experiments_repo import Experiment
from promptlab.experiments import runs as experiment_runs
from promptlab.models.experiments import CompareRow, Comparison, ComparisonDelta, ScoreInterval

PAGE_CHARS = 1_000_000  # ≤ 4 MB of UTF-8: within the 6 MB a Lambda answer may be
CHUNK_ROWS = 50  # rows read from Postgres at a time while a page is written
COMPARED_OUTPUT_CHARS = 2_000  # what the comparison shows of an output (it compares whole ones by hash)
BOOTSTRAP_SAMPLES = 2_000
BOOTSTRAP_SEED = 20  # the interval is the same every time it is asked for


@dataclass(frozen=True)
class ResultRow:
    """One dataset row with every variant's answer."""

    n: int
    input: Any
    expected: Any
    variants: dict[int, Row]


def _grouped(rows: list[Row]) -> list[ResultRow]:
    out: list[ResultRow] = []
    for row in rows:
        if not out or out[-1].n != row["n"]:
            out.append(ResultRow(n=row["n"], input=row["input"], expected=row["expected"], variants={}))
        out[-1].variants[int(row["variant"])] = row
    return out


def _experiment(tenant_id: str, experiment_id: str) -> Experiment:
    with connection() as conn:
        return experiment_runs.require(conn, tenant_id=tenant_id, experiment_id=experiment_id)


def _load(
    experiment: Experiment, *, after_row: int = 0, rows: int | None = None, output_chars: int | None = None
) -> list[ResultRow]:
    with connection() as conn:
        found = experiments_repo.results(
            conn, experiment=experiment, after_row=after_row, rows=rows, output_chars=output_chars
        )
    return _grouped(found)


def _scores(job: Row | None, names: list[str]) -> dict[str, float | None]:
    given = (job or {}).get("scores") or {}
    return {n: (float(given[n]["score"]) if n in given and given[n]["score"] is not None else None) for n in names}


def _variant_json(index: int, job: Row | None, names: list[str]) -> dict[str, Any]:
    if job is None:
        return {"variant": index, "jobId": None, "status": None}
    cost = job["estimated_cost_usd"]
    scores = (job.get("scores") or {}) if job else {}
    return {
        "variant": index,
        "jobId": job["job_id"],
        "status": job["status"],
        "output": job["output"],
        "costUSD": None if cost is None else money_str(cost),
        "latencyMs": job["provider_latency_ms"],
        "cacheHit": job["cache_hit"],
        "error": (job["error"] or {}).get("code") if job["status"] != "completed" else None,
        "scores": _scores(job, names),
        "scoreErrors": {n: scores[n]["error"] for n in names if n in scores and scores[n]["error"]},
    }


def _csv_header(experiment: Experiment, names: list[str]) -> list[str]:
    header = ["row", "input", "expected"]
    for index in range(len(experiment.variants)):
        v = f"v{index}"
        header += [f"{v}_status", f"{v}_output", f"{v}_cost_usd", f"{v}_latency_ms", *(f"{v}_{n}" for n in names)]
    return header


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def spreadsheet_safe(cell: Any) -> Any:
    """A text cell a spreadsheet shows as text, never runs: one starting like a formula gets a `'` in front
    (OWASP's rule for CSV injection). Numbers stay numbers."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def _csv_line(experiment: Experiment, row: ResultRow, names: list[str]) -> list[Any]:
    expected = row.expected if isinstance(row.expected, str) or row.expected is None else json.dumps(row.expected)
    line: list[Any] = [row.n, json.dumps(row.input, ensure_ascii=False), expected]
    for index in range(len(experiment.variants)):
        job = row.variants.get(index)
        cost = job["estimated_cost_usd"] if job else None
        scores = _scores(job, names)
        line += [
            job["status"] if job else "",
            job["output"] if job else "",
            "" if cost is None else money_str(cost),
            "" if not job or job["provider_latency_ms"] is None else job["provider_latency_ms"],
            *("" if scores[n] is None else scores[n] for n in names),
        ]
    return [spreadsheet_safe(cell) for cell in line]


def _pages(experiment: Experiment, *, after_row: int, rows: int) -> Iterator[ResultRow]:
    """The rows after `after_row`, read a chunk at a time (outputs can be long)."""
    given = 0
    while given < rows:
        chunk = _load(experiment, after_row=after_row, rows=min(CHUNK_ROWS, rows - given))
        if not chunk:
            return
        yield from chunk
        given += len(chunk)
        after_row = chunk[-1].n


def export(*, tenant_id: str, experiment_id: str, fmt: str, cursor: str | None, rows: int) -> tuple[str, str | None]:
    """(a page of the joined results as JSONL or CSV text, the next page's cursor or None): at most `rows`
    rows, and the page ends early once it holds `PAGE_BYTES` of text, so an answer stays within what
    API Gateway returns however long the outputs are."""
    after_row = decode_row_cursor(cursor)
    experiment = _experiment(tenant_id, experiment_id)
    names = [s.name for s in experiment.scorers]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: a cell holding a CR or LF is quoted
    if fmt == "csv" and after_row == 0:
        writer.writerow(_csv_header(experiment, names))
    written, last = 0, 0
    for row in _pages(experiment, after_row=after_row, rows=rows + 1):
        if written == rows or (written and buffer.tell() >= PAGE_CHARS):  # more follow: the page ends here
            return buffer.getvalue(), encode_row_cursor(last)
        if fmt == "csv":
            writer.writerow(_csv_line(experiment, row, names))
        else:
            variants = [_variant_json(i, row.variants.get(i), names) for i in range(len(experiment.variants))]
            buffer.write(json.dumps({"row": row.n, "input": row.input, "expected": row.expected, "variants": variants},
                                    ensure_ascii=False) + "\n")  # fmt: skip
        written, last = written + 1, row.n
    return buffer.getvalue(), None


def _row_score(job: Row | None, scorer: str | None, names: list[str]) -> float | None:
    """A row's score for one scorer, or the mean of every scorer that scored it."""
    if job is None or job["status"] != "completed":
        return None
    scores = _scores(job, names)
    if scorer is not None:
        return scores.get(scorer)
    given = [v for v in scores.values() if v is not None]
    return sum(given) / len(given) if given else None


def bootstrap_interval(deltas: list[float], *, samples: int = BOOTSTRAP_SAMPLES, level: float = 0.95) -> ScoreInterval:
    """The paired bootstrap percentile interval of the mean difference (resampling rows with replacement)."""
    rng = random.Random(BOOTSTRAP_SEED)
    n = len(deltas)
    means = sorted(sum(rng.choices(deltas, k=n)) / n for _ in range(samples))
    tail = (1 - level) / 2
    low = means[int(tail * samples)]
    high = means[min(samples - 1, int((1 - tail) * samples))]
    return ScoreInterval(low=round(low, 6), high=round(high, 6), level=level)


def _p50(values: list[int]) -> int | None:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2] if ordered else None


def compare(*, tenant_id: str, experiment_id: str, a: int, b: int, scorer: str | None, limit: int) -> Comparison:
    """Per-row differences of variants a and b, and the aggregate deltas with a bootstrap interval."""
    experiment = _experiment(tenant_id, experiment_id)
    grouped = _load(experiment, output_chars=COMPARED_OUTPUT_CHARS)
    count = len(experiment.variants)
    for field, index in (("a", a), ("b", b)):
        if not 0 <= index < count:
            raise ValidationFailed.single(field, f"the experiment has variants 0 to {count - 1}")
    names = [s.name for s in experiment.scorers]
    if scorer is not None and scorer not in names:
        raise ValidationFailed.single("scorer", f"the experiment's scorers are {names}")
    rows: list[CompareRow] = []
    deltas: list[float] = []
    costs = {a: Decimal(0), b: Decimal(0)}
    latencies: dict[int, list[int]] = {a: [], b: []}
    for row in grouped:
        ja, jb = row.variants.get(a), row.variants.get(b)
        for index, job in ((a, ja), (b, jb)):
            if job is not None and job["estimated_cost_usd"] is not None:
                costs[index] += job["estimated_cost_usd"]
            if job is not None and job["provider_latency_ms"] is not None and not job["cache_hit"]:
                latencies[index].append(job["provider_latency_ms"])
        sa, sb = _row_score(ja, scorer, names), _row_score(jb, scorer, names)
        delta = None if sa is None or sb is None else round(sb - sa, 6)
        if delta is not None:
            deltas.append(delta)
        out_a, out_b = (ja or {}).get("output"), (jb or {}).get("output")
        if delta != 0 or (ja or {}).get("output_md5") != (jb or {}).get("output_md5"):
            rows.append(
                CompareRow(
                    row=row.n,
                    input=row.input,
                    expected=row.expected,
                    output_a=out_a,
                    output_b=out_b,
                    score_a=sa,
                    score_b=sb,
                    delta=delta,
                )  # fmt: skip
            )
    rows.sort(key=lambda r: (-(abs(r.delta) if r.delta is not None else -1), r.row))
    p50_a, p50_b = _p50(latencies[a]), _p50(latencies[b])
    mean = round(sum(deltas) / len(deltas), 6) if deltas else None
    return Comparison(
        experiment_id=experiment_id, a=a, b=b, scorer=scorer, averaged=[scorer] if scorer else names,
        paired_rows=len(deltas),
        wins=sum(1 for d in deltas if d > 0), losses=sum(1 for d in deltas if d < 0),
        ties=sum(1 for d in deltas if d == 0),
        delta=ComparisonDelta(
            score=mean, score_interval=bootstrap_interval(deltas) if deltas else None,
            cost_usd=costs[b] - costs[a],
            latency_p50_ms=None if p50_a is None or p50_b is None else p50_b - p50_a,
        ),
        rows=rows[:limit],
    )  # fmt: skip
