"""Templates teams can trust: typed variables, dry-run render, labels, diffs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from promptlab.local.runner import LocalRunner
from tests.support import call_api, unique

SCHEMA = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "minLength": 2, "maxLength": 80, "description": "What to write about"},
        "tone": {"enum": ["formal", "casual"], "default": "casual"},
        "words": {"type": "integer", "minimum": 50, "maximum": 2000},
    },
    "required": ["topic", "words"],
}


def typed_template(runner: LocalRunner) -> dict[str, Any]:
    body = {
        "name": unique("typed"),
        "body": "Write {{ words }} words about {{ topic }} in a {{ tone }} tone.",
        "variablesSchema": SCHEMA,
    }
    answer = call_api(runner, "POST", "/templates", body=body)
    assert answer.status == 201, answer.body
    made: dict[str, Any] = answer.body
    return made


def test_a_variable_schema_types_the_input(runner: LocalRunner) -> None:
    template = typed_template(runner)
    assert template["variablesSchema"] == SCHEMA
    by_name = {v["name"]: v for v in template["variables"]}
    assert by_name["tone"] == {"name": "tone", "required": False, "default": "casual"}
    assert by_name["words"]["required"] is True
    bad = call_api(
        runner,
        "POST",
        "/generate",
        body={"templateId": template["id"], "input": {"topic": "x", "tone": "angry", "words": "many"}},
    )
    assert bad.status == 422
    fields = {f["field"] for f in bad.body["error"]["details"]["fields"]}
    assert fields == {"input.topic", "input.tone", "input.words"}
    missing = call_api(runner, "POST", "/generate", body={"templateId": template["id"], "input": {"topic": "SQS"}})
    assert missing.status == 422 and missing.body["error"]["details"]["fields"][0]["field"] == "input.words"
    good = call_api(
        runner, "POST", "/generate", body={"templateId": template["id"], "input": {"topic": "SQS", "words": 300}}
    )
    assert good.status == 202 and good.body["input"] == {"topic": "SQS", "tone": "casual", "words": "300"}


def test_a_schema_must_match_the_placeholders(runner: LocalRunner) -> None:
    body = {
        "name": unique("typed"),
        "body": "About {{ topic }}.",
        "variablesSchema": {"type": "object", "properties": {"subject": {"type": "string"}}},
    }
    answer = call_api(runner, "POST", "/templates", body=body)
    assert answer.status == 422
    fields = {f["field"] for f in answer.body["error"]["details"]["fields"]}
    assert fields == {"variablesSchema.properties.subject", "variablesSchema.properties.topic"}
    broken = call_api(
        runner, "POST", "/templates", body={**body, "variablesSchema": {"type": "object", "properties": 5}}
    )
    assert broken.status == 422 and broken.body["error"]["details"]["fields"][0]["field"] == "variablesSchema"


def test_render_shows_the_prompts_tokens_and_worst_case_cost_without_a_job(runner: LocalRunner) -> None:
    template = typed_template(runner)
    before = call_api(runner, "GET", "/jobs", query={"templateId": template["id"]}).body["items"]
    answer = call_api(
        runner,
        "POST",
        f"/templates/{template['id']}/render",
        body={"input": {"topic": "queues", "words": 100}, "maxTokens": 1000},
    )
    assert answer.status == 200, answer.body
    rendered = answer.body
    assert rendered["messages"] == [{"role": "user", "content": "Write 100 words about queues in a casual tone."}]
    assert rendered["provider"] == "fake" and rendered["model"] == "fake-1" and rendered["maxTokens"] == 1000
    assert 5 < rendered["inputTokensEstimate"] < 40
    # fake-1: $5 / M output → 1,000 tokens = $0.005, plus the input bound at $1.25 / M.
    assert Decimal("0.005") < Decimal(rendered["worstCaseCostUSD"]) < Decimal("0.0052")
    assert call_api(runner, "GET", "/jobs", query={"templateId": template["id"]}).body["items"] == before
    invalid = call_api(runner, "POST", f"/templates/{template['id']}/render", body={"input": {"topic": "q"}})
    assert invalid.status == 422


def test_labels_move_in_one_call_are_recorded_and_name_a_version_to_generate(runner: LocalRunner) -> None:
    made = call_api(runner, "POST", "/templates", body={"name": unique("lbl"), "body": "v1 {{ x }}"}).body
    call_api(runner, "PUT", f"/templates/{made['id']}", body={"name": made["name"], "body": "v2 {{ x }}"})
    moved = call_api(runner, "PUT", f"/templates/{made['id']}/labels/production", body={"version": 1})
    assert moved.status == 200 and moved.body["labels"] == [
        {**moved.body["labels"][0], "label": "production", "version": 1}
    ]
    call_api(runner, "PUT", f"/templates/{made['id']}/labels/production", body={"version": 2})
    history = call_api(runner, "GET", f"/templates/{made['id']}/labels").body
    assert [(m["label"], m["fromVersion"], m["toVersion"]) for m in history["moves"]] == [
        ("production", 1, 2),
        ("production", None, 1),
    ]
    assert history["moves"][0]["movedBy"] == "development" and history["moves"][0]["movedAt"]
    for ref, version in ((f"{made['id']}@production", 2), (f"{made['id']}@1", 1), (made["id"], 2)):
        job = call_api(runner, "POST", "/generate", body={"templateId": ref, "input": unique("in")}).body
        assert job["templateVersion"] == version, ref
    unknown = call_api(runner, "POST", "/generate", body={"templateId": f"{made['id']}@staging", "input": "x"})
    assert unknown.status == 404 and "no label 'staging'" in unknown.body["error"]["message"]
    assert call_api(runner, "POST", "/generate", body={"templateId": f"{made['id']}@9", "input": "x"}).status == 404
    beyond = call_api(runner, "PUT", f"/templates/{made['id']}/labels/production", body={"version": 3})
    assert beyond.status == 422 and beyond.body["error"]["details"]["fields"][0]["field"] == "version"


def test_a_diff_shows_changed_lines_and_settings(runner: LocalRunner) -> None:
    made = call_api(
        runner,
        "POST",
        "/templates",
        body={"name": unique("diff"), "body": "Line one\nAbout {{ x }}\nLine three", "defaults": {"maxTokens": 100}},
    ).body
    call_api(
        runner,
        "PUT",
        f"/templates/{made['id']}",
        body={"name": made["name"], "body": "Line one\nAll about {{ x }}\nLine three", "defaults": {"maxTokens": 200}},
    )
    diff = call_api(runner, "GET", f"/templates/{made['id']}/versions/1/diff/2")
    assert diff.status == 200, diff.body
    assert "-About {{ x }}" in diff.body["body"] and "+All about {{ x }}" in diff.body["body"]
    assert diff.body["system"] == []
    assert diff.body["changes"] == {"defaults.maxTokens": {"from": 100, "to": 200}}
    assert call_api(runner, "GET", f"/templates/{made['id']}/versions/1/diff/7").status == 404
