"""`promptlab datasets …` and `promptlab experiments …`: upload rows, run template versions over them with a
progress bar, read the figures, compare, promote, download the results. All over HTTP (the client)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.cli.failures import UsageError

if TYPE_CHECKING:
    from promptlab.client import Client
    from promptlab.models.experiments import ExperimentPublic


def _client(args: argparse.Namespace) -> Client:
    from promptlab.client import Client

    return Client(args.url, args.api_key)


def cmd_upload(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        dataset_id = client.datasets.resolve(args.dataset) if args.dataset else None
        made = client.datasets.upload(args.file, name=args.name, dataset_id=dataset_id)
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    print(f"{made.id} {made.name} · version {made.version} · {made.row_count:,} rows · fields {', '.join(made.fields)}")
    return 0


def parse_variant(text: str) -> dict[str, Any]:
    """`TEMPLATE[@v],provider=…,model=…,maxTokens=…,temperature=…` → a variant body."""
    template, *options = text.split(",")
    variant: dict[str, Any] = {"template": template}
    params: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise UsageError(f"--variant: {option!r} is not key=value")
        if key in {"provider", "model"}:
            variant[key] = value
        elif key in {"maxTokens", "temperature"}:
            params[key] = json.loads(value) if key == "maxTokens" else value
        else:
            raise UsageError(f"--variant: unknown option {key!r} (provider, model, maxTokens, temperature)")
    if params:
        variant["params"] = params
    return variant


def parse_scorer(text: str) -> dict[str, Any]:
    """`contains`, `exact`, `regex=PATTERN`, `length=MIN:MAX`, `judge=TEMPLATE`, or a JSON object."""
    if text.startswith("{"):
        scorer: dict[str, Any] = json.loads(text)
        return scorer
    kind, _, value = text.partition("=")
    if kind in {"contains", "exact"} and not value:
        return {"type": kind}
    if kind == "regex" and value:
        return {"type": "regex", "pattern": value}
    if kind == "judge" and value:
        return {"type": "judge", "template": value}
    if kind == "length" and value:
        low, _, high = value.partition(":")
        return {"type": "length", **({"min": int(low)} if low else {}), **({"max": int(high)} if high else {})}
    raise UsageError(f"--scorer: {text!r} (contains, exact, regex=PATTERN, length=MIN:MAX, judge=TEMPLATE or JSON)")


def _bar(experiment: ExperimentPublic) -> None:
    if not sys.stderr.isatty():
        return
    done = sum(v.completed + v.failed for v in experiment.variants)
    total = experiment.rows * len(experiment.variants)
    filled = int(30 * experiment.progress)
    sys.stderr.write(f"\r[{'#' * filled}{'-' * (30 - filled)}] {done}/{total} answers · ${experiment.cost_usd}")
    sys.stderr.write("\n" if experiment.status != "running" else "")
    sys.stderr.flush()


def print_experiment(experiment: ExperimentPublic) -> None:
    """The experiment's figures, one line per variant."""
    print(f"{experiment.id} {experiment.status} · {experiment.rows:,} rows · ${experiment.cost_usd}")
    for v in experiment.variants:
        scores = " ".join(f"{name}={'-' if mean is None else f'{mean:.3f}'}" for name, mean in v.scores.items())
        print(
            f"  [{v.index}] {v.template_id}@{v.template_version} {v.provider}/{v.model}: {v.completed} done,"
            f" {v.failed} failed · ${v.cost_usd} (+${v.judge_cost_usd} judging)"
            f" · p50 {'-' if v.latency_ms.p50 is None else v.latency_ms.p50} ms"
            f"{' · ' + scores if scores else ''}"
        )


def cmd_run(args: argparse.Namespace) -> int:
    client = _client(args)
    variants = [parse_variant(v) for v in args.variant]
    for variant in variants:
        variant["template"] = client.templates.resolve(variant["template"])
    scorers = [parse_scorer(s) for s in args.scorer or []]
    for scorer in scorers:
        if scorer.get("type") == "judge":
            scorer["template"] = client.templates.resolve(scorer["template"])
    try:
        dataset_id = client.datasets.resolve(args.dataset)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    experiment = client.experiments.start(
        dataset_id, variants, scorers=scorers, priority=args.priority, sample=args.sample, name=args.name
    )
    print(experiment.id, file=sys.stderr)
    if args.no_wait:
        print(experiment.id)
        return 0
    experiment = client.experiments.wait(experiment.id, every=args.every, progress=_bar)
    print_experiment(experiment)
    return 0 if experiment.status == "completed" else 1


def cmd_show(args: argparse.Namespace) -> int:
    client = _client(args)
    if getattr(args, "wait", False):
        experiment = client.experiments.wait(args.id, every=1.0, progress=_bar)
    else:
        experiment = client.experiments.get(args.id)
    print_experiment(experiment)
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    fmt = args.format or ("jsonl" if args.output and args.output.endswith((".jsonl", ".ndjson")) else "csv")
    pages = _client(args).experiments.results(args.id, fmt=fmt)
    if args.output in (None, "-"):
        for text in pages:
            sys.stdout.write(text)
        return 0
    with Path(args.output).open("w", encoding="utf-8", newline="") as out:
        for text in pages:
            out.write(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    found = _client(args).experiments.compare(args.id, a=args.a, b=args.b, scorer=args.scorer)
    delta = found.delta
    interval = delta.score_interval
    span = f" (95 % CI {interval.low:+.3f} … {interval.high:+.3f})" if interval else ""
    score = "-" if delta.score is None else f"{delta.score:+.3f}"
    measured = found.scorer or f"mean of {', '.join(found.averaged) or 'no scorer'}"
    print(f"b − a over {found.paired_rows} rows: score ({measured}) {score}{span} · {found.wins} better,"
          f" {found.losses} worse,")  # fmt: skip
    print(f"  {found.ties} equal · cost {delta.cost_usd:+} USD · latency p50 {delta.latency_p50_ms} ms")
    for row in found.rows[: args.rows]:
        print(f"  row {row.row}: {row.score_a} → {row.score_b}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    done = _client(args).experiments.promote(args.id, variant=args.variant, label=args.label)
    before = "new" if done.previous_version is None else f"was {done.previous_version}"
    print(f"{done.template_id}@{done.label} → version {done.version} ({before})")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    print_experiment(_client(args).experiments.cancel(args.id))
    return 0


def _http_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("PROMPTLAB_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--api-key", help="default: PROMPTLAB_API_KEY, else the local runner's development key")


def register(sub: Any) -> None:
    """Add `datasets` and `experiments`."""
    datasets = sub.add_parser("datasets", help="upload dataset files").add_subparsers(dest="action", required=True)
    upload = datasets.add_parser("upload", help="a JSONL or CSV file as a dataset (or its next version)")
    upload.add_argument("file")
    upload.add_argument("--name", help="default: the file's name without its extension")
    upload.add_argument("--dataset", help="add the file as the next version of this dataset (id or name)")
    _http_options(upload)
    upload.set_defaults(func=cmd_upload)

    experiments = sub.add_parser("experiments", help="run template versions over a dataset, compare, promote")
    actions = experiments.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="start an experiment and follow it with a progress bar")
    run.add_argument("--dataset", required=True, help="a dataset id or name")
    run.add_argument(
        "--variant", action="append", required=True,
        help="TEMPLATE[@version|@label][,provider=…][,model=…][,maxTokens=…][,temperature=…] (repeatable)",
    )  # fmt: skip
    run.add_argument("--scorer", action="append", help="contains, exact, regex=P, length=MIN:MAX, judge=TEMPLATE")
    run.add_argument("--priority", choices=["normal", "low", "economy"])
    run.add_argument("--sample", type=int, help="run this many random rows")
    run.add_argument("--name")
    run.add_argument("--every", type=float, default=1.0, help="seconds between progress reads")
    run.add_argument("--no-wait", action="store_true", help="print the experiment's id and return")
    for name, func, helptext in (
        ("show", cmd_show, "an experiment's figures"),
        ("cancel", cmd_cancel, "cancel what has not started"),
    ):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("id")
        if name == "show":
            action.add_argument("--wait", action="store_true", help="follow it with a progress bar until it ends")
        _http_options(action)
        action.set_defaults(func=func)
    results = actions.add_parser("results", help="download the joined results (CSV or JSONL)")
    results.add_argument("id")
    results.add_argument("-o", "--output", help="a file (.csv or .jsonl); default: standard output")
    results.add_argument("--format", choices=["csv", "jsonl"])
    compare = actions.add_parser("compare", help="variant b against variant a")
    compare.add_argument("id")
    compare.add_argument("--a", type=int, default=0)
    compare.add_argument("--b", type=int, default=1)
    compare.add_argument("--scorer")
    compare.add_argument("--rows", type=int, default=10, help="differing rows to list")
    promote = actions.add_parser("promote", help="point a label at a variant's template version")
    promote.add_argument("id")
    promote.add_argument("--variant", type=int, required=True)
    promote.add_argument("--label", default="production")
    for parser, func in ((run, cmd_run), (results, cmd_results), (compare, cmd_compare), (promote, cmd_promote)):
        _http_options(parser)
        parser.set_defaults(func=func)
