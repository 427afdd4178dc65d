"""Templates over the API handler, fed API Gateway events, against the real Postgres."""

from typing import Any

from promptlab.local.runner import LocalRunner
from tests.support import call_api, unique


def create(runner: LocalRunner, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("tpl"), "body": "Write about {{ topic }} in a {{ tone }} tone.", **fields}
    answer = call_api(runner, "POST", "/templates", body=body)
    assert answer.status == 201, answer.body
    template: dict[str, Any] = answer.body
    return template


def test_create_then_read_round_trips(runner: LocalRunner) -> None:
    made = create(runner, system="You are {{ persona }}.", defaults={"maxTokens": 300, "temperature": 0.7})
    assert made["id"].startswith("tpl_") and made["version"] == 1
    assert [v["name"] for v in made["variables"]] == ["persona", "topic", "tone"]
    assert made["defaults"] == {
        "provider": None,
        "model": None,
        "maxTokens": 300,
        "temperature": "0.7",
        "fallbacks": None,
        "tools": None,
        "toolChoice": None,
    }
    assert made["createdAt"].endswith("Z")
    read = call_api(runner, "GET", f"/templates/{made['id']}")
    assert read.status == 200 and read.body == made
    assert read.header("ETag") == '"1"'
    assert read.header("X-Request-Id")


def test_put_makes_a_new_version_and_keeps_the_old_one(runner: LocalRunner) -> None:
    made = create(runner)
    answer = call_api(
        runner, "PUT", f"/templates/{made['id']}", body={"name": made["name"], "body": "Shorter: {{ topic }}"}
    )
    assert answer.status == 200 and answer.body["version"] == 2
    assert [v["name"] for v in answer.body["variables"]] == ["topic"]
    versions = call_api(runner, "GET", f"/templates/{made['id']}/versions").body["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["body"] == made["body"]


def test_a_stale_if_match_is_a_412_and_a_fresh_one_passes(runner: LocalRunner) -> None:
    made = create(runner)
    body = {"name": made["name"], "body": "v2 {{ x }}"}
    assert call_api(runner, "PUT", f"/templates/{made['id']}", body=body, headers={"If-Match": '"1"'}).status == 200
    stale = call_api(runner, "PUT", f"/templates/{made['id']}", body=body, headers={"If-Match": '"1"'})
    assert stale.status == 412 and stale.body["error"]["code"] == "precondition_failed"
    assert stale.body["error"]["details"]["currentVersion"] == 2


def test_names_are_unique_among_live_templates(runner: LocalRunner) -> None:
    made = create(runner)
    again = call_api(runner, "POST", "/templates", body={"name": made["name"], "body": "x"})
    assert again.status == 409 and again.body["error"]["code"] == "conflict"


def test_archive_hides_from_lists_blocks_edits_and_is_idempotent(runner: LocalRunner) -> None:
    made = create(runner)
    assert call_api(runner, "DELETE", f"/templates/{made['id']}").status == 204
    assert call_api(runner, "DELETE", f"/templates/{made['id']}").status == 204
    read = call_api(runner, "GET", f"/templates/{made['id']}")
    assert read.status == 200 and read.body["archivedAt"] is not None
    listed = call_api(runner, "GET", "/templates", query={"q": made["name"]}).body["items"]
    assert listed == []
    edit = call_api(runner, "PUT", f"/templates/{made['id']}", body={"name": made["name"], "body": "x"})
    assert edit.status == 409
    # The name is free again once the template is archived.
    assert call_api(runner, "POST", "/templates", body={"name": made["name"], "body": "x"}).status == 201


def test_list_pages_with_a_cursor_and_filters_by_text(runner: LocalRunner) -> None:
    tag = unique("page")
    ids = [create(runner, name=f"{tag}-{i}")["id"] for i in range(3)]
    first = call_api(runner, "GET", "/templates", query={"q": tag, "limit": "2"}).body
    assert [t["id"] for t in first["items"]] == ids[::-1][:2]
    second = call_api(runner, "GET", "/templates", query={"q": tag, "limit": "2", "cursor": first["nextCursor"]}).body
    assert [t["id"] for t in second["items"]] == [ids[0]] and second["nextCursor"] is None


def test_unknown_template_is_a_404_in_the_error_shape(runner: LocalRunner) -> None:
    answer = call_api(runner, "GET", "/templates/tpl_missing")
    assert answer.status == 404
    error = answer.body["error"]
    assert error["code"] == "not_found" and error["requestId"] == answer.header("X-Request-Id")


def test_validation_errors_name_each_field(runner: LocalRunner) -> None:
    answer = call_api(runner, "POST", "/templates", body={"name": "", "bodyy": "x", "cacheTtlSeconds": -1})
    assert answer.status == 422 and answer.body["error"]["code"] == "validation_error"
    fields = {f["field"] for f in answer.body["error"]["details"]["fields"]}
    assert fields == {"name", "body", "bodyy", "cacheTtlSeconds"}


def test_a_bad_placeholder_is_a_422_on_body(runner: LocalRunner) -> None:
    answer = call_api(runner, "POST", "/templates", body={"name": unique("bad"), "body": "Hi {{ user.name }}"})
    assert answer.status == 422
    assert answer.body["error"]["details"]["fields"][0]["field"] == "body"


def test_malformed_json_is_400_and_form_data_is_415(runner: LocalRunner) -> None:
    broken = call_api(runner, "POST", "/templates", raw_body='{"name": ')
    assert broken.status == 400 and broken.body["error"]["code"] == "bad_request"
    form = call_api(
        runner,
        "POST",
        "/templates",
        raw_body="name=x&body=y",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status == 415 and form.body["error"]["code"] == "unsupported_media_type"


def test_openapi_document_is_served(runner: LocalRunner) -> None:
    answer = call_api(runner, "GET", "/openapi.json")
    assert answer.status == 200
    assert {"/templates", "/templates/{id}", "/generate", "/jobs/{id}", "/health"} <= set(answer.body["paths"])


def test_health_reports_every_dependency(runner: LocalRunner) -> None:
    answer = call_api(runner, "GET", "/health")
    assert answer.status == 200
    assert {k: v["status"] for k, v in answer.body["checks"].items()} == {
        "postgres": "ok",
        "redis": "ok",
        "queue": "ok",
    }


def test_text_that_postgres_cannot_hold_and_deep_nesting_are_422s_naming_the_field(runner: LocalRunner) -> None:
    made = create(runner)
    deep: Any = "x"
    for _ in range(70):
        deep = [deep]
    cases = [
        ("/templates", {"name": unique("nul"), "body": "a\u0000b"}, "body"),
        ("/generate", {"templateId": made["id"], "input": {"topic": "x\u0000", "tone": "y"}}, "input.topic"),
        ("/generate", {"templateId": made["id"], "input": "\ud800"}, "input"),
        ("/generate", {"templateId": made["id"], "input": {"topic": deep, "tone": "y"}}, "input.topic"),
    ]
    for path, body, field in cases:
        answer = call_api(runner, "POST", path, body=body)
        assert answer.status == 422, (path, answer.body)
        assert answer.body["error"]["details"]["fields"][0]["field"].startswith(field)


def test_a_stale_if_match_on_delete_is_a_412(runner: LocalRunner) -> None:
    made = create(runner)
    call_api(runner, "PUT", f"/templates/{made['id']}", body={"name": made["name"], "body": "v2 {{ x }}"})
    stale = call_api(runner, "DELETE", f"/templates/{made['id']}", headers={"If-Match": '"1"'})
    assert stale.status == 412 and stale.body["error"]["details"]["currentVersion"] == 2
    assert call_api(runner, "GET", f"/templates/{made['id']}").body["archivedAt"] is None
    assert call_api(runner, "DELETE", f"/templates/{made['id']}", headers={"If-Match": '"2"'}).status == 204


def test_an_archived_template_refuses_generations_and_can_be_restored(runner: LocalRunner) -> None:
    made = create(runner)
    assert call_api(runner, "DELETE", f"/templates/{made['id']}").status == 204
    inputs = {"topic": "x", "tone": "y"}
    refused = call_api(runner, "POST", "/generate", body={"templateId": made["id"], "input": inputs})
    assert refused.status == 409 and "archived" in refused.body["error"]["message"]
    restored = call_api(runner, "POST", f"/templates/{made['id']}/restore")
    assert restored.status == 200 and restored.body["archivedAt"] is None and restored.header("ETag") == '"1"'
    again = call_api(runner, "POST", "/generate", body={"templateId": made["id"], "input": inputs})
    assert again.status == 202
    # Archived again, and its name taken by a new template meanwhile: restoring would clash.
    call_api(runner, "DELETE", f"/templates/{made['id']}")
    assert call_api(runner, "POST", "/templates", body={"name": made["name"], "body": "y"}).status == 201
    clash = call_api(runner, "POST", f"/templates/{made['id']}/restore")
    assert clash.status == 409 and made["name"] in clash.body["error"]["message"]
    assert call_api(runner, "POST", "/templates/tpl_nope/restore").status == 404


def test_template_names_starting_with_promptlab_are_reserved(runner: LocalRunner) -> None:
    refused = call_api(runner, "POST", "/templates", body={"name": "promptlab:chat", "body": "Mine {{ x }}."})
    assert refused.status == 422 and refused.body["error"]["details"]["fields"][0]["field"] == "name"
