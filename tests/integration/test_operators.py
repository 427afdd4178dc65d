"""Operators: scoped keys, keys managed over HTTPS, protected labels, and the append-only audit log."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import psycopg
import pytest

import promptlab.api.app  # noqa: F401  (registers every route)
from promptlab.api.declared import DECLARED
from promptlab.core.scopes import SCOPES
from promptlab.local.runner import LocalRunner
from promptlab.tenancy import audit, auth
from tests.support import call_api, rows, unique


def key_with(*scopes: str, tenant_id: str | None = None) -> str:
    return auth.create_key(name=unique("scoped"), tenant_id=tenant_id, scopes=list(scopes) or None).key


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path).replace("/x1/diff/x1", "/1/diff/1")


def test_every_route_refuses_a_key_without_its_scope(runner: LocalRunner) -> None:
    # Given, for each scope, a key holding every other scope but that one (and not admin)
    keyed = [d for d in DECLARED.values() if d.scope is not None and not d.path.startswith("/docs")]
    needs = {d.scope: set(d.scope.split("|")) for d in keyed if d.scope}
    assert set().union(*needs.values()) == set(SCOPES)  # every scope guards some route
    keys = {scope: key_with(*[s for s in SCOPES if s not in (*one_of, "admin")]) for scope, one_of in needs.items()}
    for declared in keyed:
        assert declared.scope is not None
        # Then a route answers 403 naming the scope it needs, before anything else is looked at
        answer = call_api(runner, declared.method, _concrete(declared.path), api_key=keys[declared.scope], body={})
        assert answer.status == 403, (declared.method, declared.path, answer.body)
        error = answer.body["error"]
        assert error["code"] == "forbidden", (declared.path, error)
        assert all(one in error["message"] for one in needs[declared.scope]), (declared.path, error)
    # And a key holding the scope gets past it (here: a 404 for the made-up id, not a 403)
    reader = key_with("read")
    assert call_api(runner, "GET", "/jobs/job_x1", api_key=reader).status == 404
    assert call_api(runner, "POST", "/templates", api_key=reader, body={"name": "x", "body": "y"}).status == 403
    # A key made without scopes (every key made before scopes existed) keeps full access
    assert call_api(runner, "GET", "/keys", api_key=key_with()).status == 200


def test_an_admin_manages_its_tenants_keys_over_https(runner: LocalRunner) -> None:
    admin = key_with("admin")
    made = call_api(runner, "POST", "/keys", api_key=admin, body={"name": "billing", "scopes": ["read"],
                                                                   "monthlyBudgetUSD": "5.00"})  # fmt: skip
    assert made.status == 201 and made.body["key"].startswith("pl_") and made.body["scopes"] == ["read"]
    new_key, key_id = made.body["key"], made.body["id"]
    # The new key works within its scopes; the listing never shows a key
    assert call_api(runner, "GET", "/templates", api_key=new_key).status == 200
    assert call_api(runner, "POST", "/generate", api_key=new_key, body={"templateId": "tpl_x"}).status == 403
    listed = call_api(runner, "GET", "/keys", api_key=admin).body["items"]
    assert key_id in {k["id"] for k in listed} and all("key" not in k for k in listed)
    assert "key_hash" not in json.dumps(listed) and new_key not in json.dumps(listed)
    # Budgets and limits change; an unknown scope is a 422 naming the field
    changed = call_api(runner, "PATCH", f"/keys/{key_id}", api_key=admin, body={"monthlyBudgetUSD": "9.50"})
    assert changed.status == 200 and Decimal(changed.body["monthlyBudgetUSD"]) == Decimal("9.50")
    bad = call_api(runner, "POST", "/keys", api_key=admin, body={"name": "x", "scopes": ["root"]})
    assert bad.status == 422 and bad.body["error"]["details"]["fields"][0]["field"] == "scopes"
    # Rotation with an overlap: both keys work; without one the old key stops at once
    rotated = call_api(runner, "POST", f"/keys/{key_id}/rotate", api_key=admin, body={"overlapSeconds": 600})
    assert rotated.status == 201 and rotated.body["scopes"] == ["read"]
    assert Decimal(rotated.body["monthlyBudgetUSD"]) == Decimal("9.50")
    assert call_api(runner, "GET", "/templates", api_key=new_key).status == 200
    assert call_api(runner, "GET", "/templates", api_key=rotated.body["key"]).status == 200
    again = call_api(runner, "POST", f"/keys/{rotated.body['id']}/rotate", api_key=admin, body={"overlapSeconds": 0})
    assert call_api(runner, "GET", "/templates", api_key=rotated.body["key"]).status == 401
    assert call_api(runner, "DELETE", f"/keys/{again.body['id']}", api_key=admin).status == 204
    assert call_api(runner, "GET", "/templates", api_key=again.body["key"]).status == 401
    # Another tenant's admin sees none of it
    other = key_with("admin")
    assert call_api(runner, "DELETE", f"/keys/{key_id}", api_key=other).status == 404
    assert call_api(runner, "PATCH", f"/keys/{key_id}", api_key=other, body={"name": "x"}).status == 404
    assert key_id not in {k["id"] for k in call_api(runner, "GET", "/keys", api_key=other).body["items"]}


def test_a_protected_label_moves_only_with_labels_write(runner: LocalRunner) -> None:
    admin = key_with("admin")
    tenant = rows("SELECT tenant_id FROM api_keys WHERE key_hash = %s", auth.hash_key(admin))[0]["tenant_id"]
    editor = key_with("templates:write", "read", tenant_id=tenant)
    releaser = key_with("labels:write", tenant_id=tenant)
    made = call_api(runner, "POST", "/templates", api_key=editor, body={"name": unique("p"), "body": "v1 {{ x }}"})
    tid = made.body["id"]
    call_api(runner, "PUT", f"/templates/{tid}", api_key=editor, body={"name": made.body["name"], "body": "v2 {{ x }}"})
    label = f"/templates/{tid}/labels/production"
    assert call_api(runner, "PUT", label, api_key=editor, body={"version": 1}).status == 200  # unprotected
    refused = call_api(runner, "PUT", label, api_key=editor, body={"version": 1, "protected": True})
    assert refused.status == 403 and refused.body["error"]["details"]["requiredScope"] == "labels:write"
    assert call_api(runner, "PUT", label, api_key=releaser, body={"version": 2, "protected": True}).status == 200
    blocked = call_api(runner, "PUT", label, api_key=editor, body={"version": 1})
    assert blocked.status == 403
    labels = call_api(runner, "GET", f"/templates/{tid}/labels", api_key=editor).body["labels"]
    assert labels == [{**labels[0], "label": "production", "version": 2, "protected": True}]  # nothing moved


def test_every_change_is_audited_without_prompt_text_and_the_chain_verifies(runner: LocalRunner) -> None:
    admin = key_with("admin")
    secret_prompt = unique("TOP-SECRET-PROMPT")

    def as_admin(method: str, path: str, **kwargs: Any) -> Any:
        answer = call_api(runner, method, path, api_key=admin, **kwargs)
        assert answer.status < 400, (method, path, answer.body)
        return answer.body

    template = as_admin("POST", "/templates", body={"name": unique("a"), "body": f"{secret_prompt} {{{{ x }}}}"})
    tid = template["id"]
    as_admin("PUT", f"/templates/{tid}", body={"name": template["name"], "body": f"{secret_prompt} v2 {{{{ x }}}}"})
    as_admin("PUT", f"/templates/{tid}/labels/production", body={"version": 2})
    job = as_admin("POST", "/generate", body={"templateId": tid, "input": {"x": secret_prompt}})
    rows("UPDATE jobs SET status = 'completed' WHERE id = %s RETURNING id", job["id"])
    as_admin("DELETE", f"/jobs/{job['id']}")
    as_admin("DELETE", f"/templates/{tid}")
    as_admin("POST", f"/templates/{tid}/restore")
    as_admin("POST", "/dlq/redrive", body={"limit": 1})
    key = as_admin("POST", "/keys", body={"name": "k", "scopes": ["read"]})
    as_admin("PATCH", f"/keys/{key['id']}", body={"rpmLimit": 30})
    rotated = as_admin("POST", f"/keys/{key['id']}/rotate", body={"overlapSeconds": 0})
    as_admin("DELETE", f"/keys/{rotated['id']}")
    as_admin("PUT", "/webhooks", body={"url": None})
    dataset = as_admin("POST", "/datasets", body={"name": unique("d"), "rows": [{"input": {"x": secret_prompt}}]})
    as_admin("DELETE", f"/datasets/{dataset['id']}")
    # Then the log names each change, who made it and in which request, newest first, never the prompt text
    log = as_admin("GET", "/audit", query={"limit": "100"})["items"]
    actions = [entry["action"] for entry in log]
    assert set(actions) >= {"template.created", "template.versioned", "label.moved", "job.purged", "template.archived",
                            "template.restored", "dlq.redriven", "key.created", "key.updated", "key.rotated",
                            "key.revoked", "dataset.deleted", "webhook.changed"}  # fmt: skip
    assert all(entry["keyName"] and entry["keyId"] and entry["requestId"] for entry in log)
    moved = next(e for e in log if e["action"] == "label.moved")
    assert moved["before"]["version"] is None and moved["after"]["version"] == 2
    assert secret_prompt not in json.dumps(log)
    assert as_admin("GET", "/audit", query={"action": "key.updated"})["items"][0]["after"]["rpmLimit"] == 30
    # And the log is append-only; a change made behind the application's back is found by `verify`
    assert audit.verify() == []
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        rows("UPDATE audit_log SET action = 'x' WHERE id = %s RETURNING id", log[0]["id"])
    from promptlab.db.connection import connection

    with connection() as conn, conn.transaction():  # the database's owner, around the application
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET after = '{}' WHERE id = %s", (log[1]["id"],))
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    problems = audit.verify()
    with connection() as conn, conn.transaction():
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET after = %s WHERE id = %s", (json.dumps(log[1]["after"]), log[1]["id"]))
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    assert any(f"row {log[1]['id']}" in problem for problem in problems) and audit.verify() == []


def test_a_label_moved_by_another_sandbox_is_never_served_stale(runner: LocalRunner, set_env: Any) -> None:
    from promptlab.db import templates_repo
    from promptlab.db.connection import connection

    # Given sandboxes that keep template copies for 30 s, and this one serving `production` (v1) from its copy
    set_env(PROMPTLAB_TEMPLATE_CACHE_SECONDS="30")
    made = call_api(runner, "POST", "/templates", body={"name": unique("lbl"), "body": "v1 {{ x }}"}).body
    tid = made["id"]
    call_api(runner, "PUT", f"/templates/{tid}", body={"name": made["name"], "body": "v2 {{ x }}"})
    call_api(runner, "PUT", f"/templates/{tid}/labels/production", body={"version": 1})
    for _ in range(3):
        job = call_api(runner, "POST", "/generate", body={"templateId": f"{tid}@production", "input": unique("x")})
        assert job.body["templateVersion"] == 1
    # When another sandbox moves the label (its own process forgets its copy; this one is not told)
    with connection() as conn:
        templates_repo.move_label(conn, template_id=tid, label="production", version=2, moved_by="other-sandbox")
    # Then the very next generation by label here uses v2, by the fast path and the full route alike
    for extra in ({}, {"metadata": {"route": "full"}}, {"cache": False}):
        body = {"templateId": f"{tid}@production", "input": unique("x"), **extra}
        job = call_api(runner, "POST", "/generate", body=body)
        assert job.status == 202 and job.body["templateVersion"] == 2, extra
    # An id pinned to a version is still served from the copy (immutable), and by id alone within its TTL
    pinned = call_api(runner, "POST", "/generate", body={"templateId": f"{tid}@1", "input": unique("x")})
    assert pinned.body["templateVersion"] == 1


def test_a_template_read_by_label_carries_its_version_as_etag(runner: LocalRunner) -> None:
    made = call_api(runner, "POST", "/templates", body={"name": unique("etag"), "body": "v1 {{ x }}"}).body
    tid = made["id"]
    call_api(runner, "PUT", f"/templates/{tid}", body={"name": made["name"], "body": "v2 {{ x }}"})
    call_api(runner, "PUT", f"/templates/{tid}/labels/production", body={"version": 1})
    by_label = call_api(runner, "GET", f"/templates/{tid}@production")
    assert by_label.status == 200 and by_label.body["version"] == 1 and by_label.header("ETag") == '"1"'
    still = call_api(runner, "GET", f"/templates/{tid}@production", headers={"If-None-Match": '"1"'})
    assert still.status == 304
    call_api(runner, "PUT", f"/templates/{tid}/labels/production", body={"version": 2})
    moved = call_api(runner, "GET", f"/templates/{tid}@production", headers={"If-None-Match": '"1"'})
    assert moved.status == 200 and moved.body["body"] == "v2 {{ x }}" and moved.header("ETag") == '"2"'
    assert call_api(runner, "GET", f"/templates/{tid}@nolabel").status == 404


def test_under_concurrent_generation_no_job_after_the_move_uses_the_old_version(
    runner: LocalRunner, set_env: Any
) -> None:
    import threading
    import time

    from promptlab.db import templates_repo
    from promptlab.db.connection import connection

    set_env(PROMPTLAB_TEMPLATE_CACHE_SECONDS="30")
    made = call_api(runner, "POST", "/templates", body={"name": unique("conc"), "body": "v1 {{ x }}"}).body
    tid = made["id"]
    call_api(runner, "PUT", f"/templates/{tid}", body={"name": made["name"], "body": "v2 {{ x }}"})
    call_api(runner, "PUT", f"/templates/{tid}/labels/production", body={"version": 1})
    seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def generate() -> None:
        while not stop.is_set():
            started = time.monotonic()
            job = call_api(runner, "POST", "/generate", body={"templateId": f"{tid}@production", "input": unique("x")})
            seen.append((started, job.body["templateVersion"]))

    threads = [threading.Thread(target=generate) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    with connection() as conn:  # another sandbox moves the label; this process is not told
        templates_repo.move_label(conn, template_id=tid, label="production", version=2, moved_by="other")
    acknowledged = time.monotonic()
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert 1 in {v for started, v in seen if started < acknowledged}  # (one in flight at the move may see either)
    after = [v for started, v in seen if started > acknowledged]
    assert len(after) > 10 and set(after) == {2}
