"""The experiments' scorers that need no provider call: each turns (output, expected) into a number in [0, 1].

A scorer that cannot score a row (no `expected` where it needs one) raises `CannotScore`; the row records
that error and the experiment goes on. Regular expressions run in RE2 (linear time), JSON Schemas through
the bounded validator, so no output can make a scorer run for long.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from promptlab.core.errors import ValidationFailed
from promptlab.core.json_schema import check_schema, re2_pattern
from promptlab.core.json_types import JsonObject
from promptlab.models.experiments import (
    ContainsScorer,
    ExactScorer,
    JsonSchemaScorer,
    LengthScorer,
    RegexScorer,
    Scorer,
)
from promptlab.providers import json_output

MAX_SCORED_CHARS = 200_000  # an output longer than this is scored on its first part


class CannotScore(Exception):
    """Why a row could not be scored (recorded on the row)."""


def check_scorers(scorers: list[Scorer]) -> None:
    """422 naming the scorer's field when its names repeat, its pattern is not RE2 or its schema is unusable."""
    seen: set[str] = set()
    for index, scorer in enumerate(scorers):
        name = scorer.name or scorer.type
        if name in seen:
            raise ValidationFailed.single(f"scorers[{index}].name", f"two scorers are named {name!r}: name them")
        seen.add(name)
        if isinstance(scorer, RegexScorer):
            try:
                re2_pattern(scorer.pattern)
            except Exception as exc:  # re2.error: RE2 refuses backreferences, lookaround and bad syntax
                raise ValidationFailed.single(
                    f"scorers[{index}].pattern", f"not an RE2 regular expression ({exc})"
                ) from None
        if isinstance(scorer, JsonSchemaScorer):
            check_schema(scorer.json_schema, field=f"scorers[{index}].schema")


def _expected_text(expected: Any) -> str:
    if expected is None:
        raise CannotScore("the row has no `expected`")
    return expected if isinstance(expected, str) else json.dumps(expected, ensure_ascii=False)


def _exact(scorer: ExactScorer, output: str, expected: Any) -> float:
    if expected is not None and not isinstance(expected, str):
        try:
            return 1.0 if json.loads(output) == expected else 0.0
        except ValueError:
            return 0.0
    want, got = _expected_text(expected).strip(), output.strip()
    if scorer.ignore_case:
        want, got = want.casefold(), got.casefold()
    return 1.0 if want == got else 0.0


def _contains(scorer: ContainsScorer, output: str, expected: Any) -> float:
    wanted = expected if isinstance(expected, list) else [_expected_text(expected)]
    if not wanted or not all(isinstance(w, str) for w in wanted):
        raise CannotScore("`expected` must be a string or a list of strings for `contains`")
    fold = scorer.ignore_case
    text = output.casefold() if fold else output
    found = sum(1 for w in wanted if (w.casefold() if fold else w) in text)
    return found / len(wanted)


def _regex(scorer: RegexScorer, output: str, _expected: Any) -> float:
    return 1.0 if re2_pattern(scorer.pattern).search(output) else 0.0


def _json_schema(scorer: JsonSchemaScorer, output: str, _expected: Any) -> float:
    return 1.0 if json_output.problem(output, {"type": "json_schema", "schema": scorer.json_schema}) is None else 0.0


def _length(scorer: LengthScorer, output: str, _expected: Any) -> float:
    size = len(output.split()) if scorer.unit == "words" else len(output)
    low, high = scorer.min, scorer.max
    return 1.0 if (low is None or size >= low) and (high is None or size <= high) else 0.0


# Each scorer scored in place, by its type in the wire contract (a judge's score comes from its own job).
IN_PLACE: dict[type[Any], Callable[[Any, str, Any], float]] = {
    ExactScorer: _exact,
    ContainsScorer: _contains,
    RegexScorer: _regex,
    JsonSchemaScorer: _json_schema,
    LengthScorer: _length,
}


def score(scorer: Scorer, *, output: str, expected: Any) -> Decimal:
    """The score of one output (not for `judge`, whose score comes from its own job)."""
    scored_by = IN_PLACE.get(type(scorer))
    if scored_by is None:
        raise CannotScore(f"{scorer.type!r} is not scored in place")
    value = scored_by(scorer, output[:MAX_SCORED_CHARS], expected)
    return Decimal(str(round(value, 6)))


JUDGE_FORMAT: JsonObject = {
    "type": "json_schema",
    "schema": {
        "type": "object",
        "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}, "reason": {"type": "string"}},
        "required": ["score"],
    },
}


def judge_score(output: str | None) -> Decimal:
    """The score a judge's answer gives (`{"score": 0..1}`); `CannotScore` when it gives none."""
    if output is None or json_output.problem(output, JUDGE_FORMAT) is not None:
        raise CannotScore("the judge's answer has no score between 0 and 1")
    value = json_output.parse(output)["score"]
    return Decimal(str(round(float(value), 6)))
