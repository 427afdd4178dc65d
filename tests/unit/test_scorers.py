"""The experiments' scorers and the comparison's bootstrap interval (pure functions)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from promptlab.core.errors import ValidationFailed
from promptlab.experiments import scorers
from promptlab.experiments.results import bootstrap_interval
from promptlab.models.experiments import Scorer, StoredScorer


def _typed(stored: dict[str, Any]) -> Scorer:
    """A scorer's settings as an experiment reads them back from its stored (wire) form."""
    return StoredScorer.from_stored(stored).settings


@pytest.mark.parametrize(
    ("scorer", "output", "expected", "score"),
    [
        ({"type": "exact"}, "  billing \n", "billing", "1"),
        ({"type": "exact"}, "Billing", "billing", "0"),
        ({"type": "exact", "ignore_case": True}, "Billing", "billing", "1"),
        ({"type": "exact"}, '{"label": "bug", "n": 1}', {"n": 1, "label": "bug"}, "1"),
        ({"type": "exact"}, "not json", {"n": 1}, "0"),
        ({"type": "contains"}, "It is a BILLING question", "billing", "1"),
        ({"type": "contains", "ignore_case": False}, "It is a BILLING question", "billing", "0"),
        ({"type": "contains"}, "refund and invoice", ["refund", "invoice", "crash", "login"], "0.5"),
        ({"type": "regex", "pattern": r"\bINV-\d{4}\b"}, "see INV-2024 please", None, "1"),
        ({"type": "regex", "pattern": r"^\d+$"}, "12a", None, "0"),
        ({"type": "json_schema", "schema": {"type": "object", "required": ["a"]}}, '```json\n{"a": 1}\n```', None, "1"),
        ({"type": "json_schema", "schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', None, "0"),
        ({"type": "length", "max": 5}, "12345", None, "1"),
        ({"type": "length", "min": 3, "unit": "words"}, "two words", None, "0"),
    ],
)
def test_each_scorer_gives_a_number_in_0_1(scorer: dict[str, Any], output: str, expected: Any, score: str) -> None:
    assert scorers.score(_typed(scorer), output=output, expected=expected) == Decimal(score)


@pytest.mark.parametrize("scorer", [{"type": "exact"}, {"type": "contains"}])
def test_a_row_without_expected_cannot_be_scored_by_comparison(scorer: dict[str, Any]) -> None:
    with pytest.raises(scorers.CannotScore, match="expected"):
        scorers.score(_typed(scorer), output="anything", expected=None)


def test_a_regex_scorer_runs_in_linear_time_on_a_hostile_output() -> None:
    # Given the pattern that backtracks for ages in a backtracking engine
    scorer = {"type": "regex", "pattern": "^(a|a)+$"}
    # Then RE2 answers at once, on a long output
    assert scorers.score(_typed(scorer), output="a" * 50_000 + "b", expected=None) == 0


@pytest.mark.parametrize(
    ("configs", "field"),
    [
        ([{"type": "regex", "name": "r", "pattern": "(a)\\1"}], "scorers[0].pattern"),
        ([{"type": "contains", "name": "c"}, {"type": "exact", "name": "c"}], "scorers[1].name"),
        ([{"type": "json_schema", "name": "j", "schema": {"type": "nope"}}], "scorers[0].schema"),
    ],
)
def test_bad_scorer_configs_name_their_field(configs: list[dict[str, Any]], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        scorers.check_scorers([_typed(c) for c in configs])
    assert refused.value.fields[0].field == field


@pytest.mark.parametrize(("answer", "score"), [('{"score": 0.75, "reason": "ok"}', "0.75"), ('{"score": 1}', "1")])
def test_a_judges_answer_gives_its_score(answer: str, score: str) -> None:
    assert scorers.judge_score(answer) == Decimal(score)


@pytest.mark.parametrize("answer", [None, "0.9", '{"score": 1.5}', '{"verdict": "good"}'])
def test_a_judge_answer_without_a_score_in_range_cannot_score(answer: str | None) -> None:
    with pytest.raises(scorers.CannotScore):
        scorers.judge_score(answer)


def test_the_bootstrap_interval_brackets_the_mean_and_is_the_same_every_time() -> None:
    deltas = [1.0] * 30 + [0.0] * 60 + [-1.0] * 10  # mean 0.2
    first = bootstrap_interval(deltas)
    assert first == bootstrap_interval(deltas)
    assert first.low < 0.2 < first.high and first.low > 0 and first.level == 0.95
    assert bootstrap_interval([0.5] * 20).model_dump() == {"low": 0.5, "high": 0.5, "level": 0.95}


def test_a_judge_is_shown_a_bounded_part_of_an_output_cut_on_a_character_boundary() -> None:
    from promptlab.experiments.runs import judge_values, judged_output_bytes

    # Given a variant allowed 3 tokens (12 bytes shown) and an answer of 4-byte characters
    shown = judge_values(row_input={"q": "x"}, expected=None, output="😀" * 10, max_tokens=3)
    assert shown["output"] == "😀" * 3 and shown["expected"] == "" and shown["input"] == '{"q": "x"}'
    assert judged_output_bytes(64_000) == 80_000


def test_every_scorer_type_of_the_wire_contract_is_scored_somewhere() -> None:
    from typing import get_args

    from promptlab.models.experiments import JudgeScorer, Scorer

    kinds = set(get_args(get_args(Scorer)[0]))  # the union inside Annotated[…, discriminator]
    assert kinds - {JudgeScorer} == set(scorers.IN_PLACE), "a scorer type has no scoring code"


@pytest.mark.parametrize(
    ("scorer", "score"),
    [
        ({"type": "exact", "ignoreCase": True}, "1"),  # as an experiment stores it (the wire's camelCase)
        ({"type": "exact", "ignoreCase": False}, "0"),
        ({"type": "contains", "ignoreCase": False}, "0"),
        ({"type": "contains", "ignoreCase": True}, "1"),
    ],
)
def test_stored_settings_are_read_as_the_wire_wrote_them(scorer: dict[str, Any], score: str) -> None:
    assert scorers.score(_typed(scorer), output="HELLO", expected="hello") == Decimal(score)


def test_a_stored_scorer_reads_back_as_it_was_written() -> None:
    # Given a judge as an experiment stores it: its settings, its resolved template and its bound
    judge = StoredScorer.from_stored(
        {"type": "judge", "name": "j", "template": "grader@production", "model": "m", "templateRef": "tpl_1@3",
         "worstCaseUSD": "0.0125"}
    )  # fmt: skip
    # Then it is typed, round-trips through its stored form, and the API never shows its bound
    assert judge.judge is not None and judge.judge.model == "m" and judge.worst_case_usd == Decimal("0.0125")
    assert StoredScorer.from_stored(judge.stored()) == judge
    assert "worstCaseUSD" not in judge.public() and judge.public()["templateRef"] == "tpl_1@3"
    unnamed = StoredScorer.from_stored({"type": "length", "max": 5})
    assert unnamed.name == "length" and unnamed.judge is None
