"""Datasets: versioned rows from JSON, JSONL or CSV, each bad row named with its field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from promptlab.local.runner import LocalRunner
from tests.support import call_api, unique


def create(runner: LocalRunner, **body: Any) -> Any:
    return call_api(runner, "POST", "/datasets", body={"name": unique("ds"), **body})


def test_json_rows_make_version_1_and_read_back_in_order(runner: LocalRunner) -> None:
    rows: list[dict[str, Any]] = [
        {"input": {"ticket": "My invoice is wrong"}, "expected": "billing", "metadata": {"source": "zendesk"}},
        {"input": {"ticket": "The app crashes", "plan": "pro"}, "expected": {"label": "bug"}},
        {"input": {"ticket": "Hello"}},
    ]
    made = create(runner, rows=rows, description="support tickets")
    assert made.status == 201 and made.header("Location") == f"/datasets/{made.body['id']}"
    assert made.body["id"].startswith("ds_") and made.body["version"] == 1 and made.body["rowCount"] == 3
    assert made.body["fields"] == ["plan", "ticket"]
    page = call_api(runner, "GET", f"/datasets/{made.body['id']}/rows").body
    assert [r["n"] for r in page["items"]] == [1, 2, 3] and page["nextCursor"] is None
    assert page["items"][0] == {"n": 1, **rows[0]}
    assert page["items"][1]["expected"] == {"label": "bug"} and page["items"][2]["expected"] is None


def test_jsonl_and_csv_uploads(runner: LocalRunner) -> None:
    lines = "\n".join(json.dumps({"input": {"q": f"question {i}"}, "expected": f"a{i}"}) for i in range(5))
    jsonl = create(runner, format="jsonl", content=lines + "\n\n")
    assert jsonl.status == 201 and jsonl.body["rowCount"] == 5
    text = 'ticket,customer,expected\nMy invoice is wrong,acme,billing\n"Crash, on login",globex,bug\nHello,,\n'
    csv = create(runner, format="csv", content=text)
    assert csv.status == 201 and csv.body["fields"] == ["customer", "ticket"]
    rows = call_api(runner, "GET", f"/datasets/{csv.body['id']}/rows").body["items"]
    assert rows[1] == {
        "n": 2,
        "input": {"ticket": "Crash, on login", "customer": "globex"},
        "expected": "bug",
        "metadata": None,
    }
    assert rows[2]["expected"] is None and rows[2]["input"] == {"ticket": "Hello", "customer": ""}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rows": [{"input": {"a": "x"}}, {"inputs": {"a": "y"}}]}, "rows[1].input"),
        ({"rows": [{"input": "not an object"}]}, "rows[0].input"),
        ({"rows": [{"input": {"a": "x"}, "metadata": {"n": 3}}]}, "rows[0].metadata.n"),
        ({"rows": []}, "rows"),
        ({"format": "jsonl", "content": '{"input": {"a": 1}}\nnot json\n'}, "content"),
        ({"format": "jsonl", "content": '{"input": {"a": 1}}\n{"input": 7}\n'}, "content.lines[1].input"),
        ({"format": "csv", "content": ""}, "content"),
        ({"format": "csv", "content": "a,b\n1,2,3\n"}, "content"),
        ({"content": "a\n1\n"}, "content"),
        ({"rows": [{"input": {"a": "x"}}], "content": "a\n1\n", "format": "csv"}, "rows"),
    ],
)
def test_each_bad_row_is_named_with_its_field(runner: LocalRunner, body: dict[str, Any], field: str) -> None:
    refused = create(runner, **body)
    assert refused.status == 422, refused.body
    fields = [f["field"] for f in refused.body["error"]["details"]["fields"]]
    assert any(f == field or f.startswith(field) for f in fields) or (field in ("rows", "content") and fields), fields


def test_a_new_version_keeps_the_old_rows_readable(runner: LocalRunner) -> None:
    made = create(runner, rows=[{"input": {"q": "one"}}]).body
    again = call_api(runner, "PUT", f"/datasets/{made['id']}", body={"rows": [{"input": {"q": "two"}}] * 3})
    assert again.status == 200 and again.body["version"] == 2 and again.body["rowCount"] == 3
    assert call_api(runner, "GET", f"/datasets/{made['id']}").body["version"] == 2
    old = call_api(runner, "GET", f"/datasets/{made['id']}/rows", query={"version": "1"}).body
    assert old["version"] == 1 and [r["input"]["q"] for r in old["items"]] == ["one"]
    missing = call_api(runner, "GET", f"/datasets/{made['id']}/rows", query={"version": "9"})
    assert missing.status == 404


def test_names_are_unique_per_tenant_and_pages_continue(runner: LocalRunner) -> None:
    name = unique("dup")
    assert call_api(runner, "POST", "/datasets", body={"name": name, "rows": [{"input": {"a": "1"}}]}).status == 201
    dup = call_api(runner, "POST", "/datasets", body={"name": name, "rows": [{"input": {"a": "1"}}]})
    assert dup.status == 409 and dup.body["error"]["code"] == "conflict"
    made = create(runner, rows=[{"input": {"i": str(i)}} for i in range(25)]).body
    seen, cursor = [], None
    while True:
        query = {"limit": "10", **({"cursor": cursor} if cursor else {})}
        page = call_api(runner, "GET", f"/datasets/{made['id']}/rows", query=query).body
        seen += [r["n"] for r in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == list(range(1, 26))
    listed = call_api(runner, "GET", "/datasets", query={"limit": "100"}).body["items"]
    assert made["id"] in {d["id"] for d in listed}
    bad = call_api(runner, "GET", f"/datasets/{made['id']}/rows", query={"cursor": "nonsense"})
    assert bad.status == 422


def put_file(url: str, data: bytes, content_type: str) -> int:
    import urllib.request

    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.status)


def test_a_file_larger_than_a_request_body_goes_through_a_presigned_upload(runner: LocalRunner) -> None:
    # Given a 30,000-row JSONL file of about 2 MB (a request body takes 1 MB)
    lines = "".join(
        json.dumps({"input": {"q": f"question {i} " + "x" * 30}, "expected": f"a{i}"}) + "\n" for i in range(30_000)
    )
    data = lines.encode()
    assert len(data) > 1_500_000
    # When it is PUT to the URL an upload gives, and the dataset names the upload
    upload = call_api(runner, "POST", "/datasets/uploads", body={"format": "jsonl"})
    assert upload.status == 201, upload.body
    assert upload.body["uploadId"].startswith("upl_") and upload.body["method"] == "PUT"
    assert put_file(upload.body["url"], data, upload.body["headers"]["Content-Type"]) == 200
    made = create(runner, format="jsonl", upload=upload.body["uploadId"])
    # Then every row is stored, and the upload is gone (it cannot make a second dataset)
    assert made.status == 201, made.body
    assert made.body["rowCount"] == 30_000 and made.body["fields"] == ["q"]
    last = call_api(runner, "GET", f"/datasets/{made.body['id']}/rows", query={"cursor": "", "limit": "1"})
    assert last.body["items"][0]["n"] == 1
    again = create(runner, format="jsonl", upload=upload.body["uploadId"])
    assert again.status == 422 and again.body["error"]["details"]["fields"][0]["field"] == "upload"


def test_an_upload_is_checked_like_content_and_belongs_to_its_tenant(runner: LocalRunner) -> None:
    from promptlab.tenancy import auth

    upload = call_api(runner, "POST", "/datasets/uploads", body={"format": "csv"}).body
    put_file(upload["url"], b"ticket,expected\nfine,ok\n\xff\xfe broken,x\n", "text/csv")
    bad = create(runner, format="csv", upload=upload["uploadId"])
    assert bad.status == 422 and "UTF-8" in bad.body["error"]["message"]
    other = auth.create_key(name=unique("thief")).key
    upload = call_api(runner, "POST", "/datasets/uploads", body={"format": "csv"}).body
    put_file(upload["url"], b"ticket\nmine\n", "text/csv")
    stolen = call_api(
        runner, "POST", "/datasets", api_key=other,
        body={"name": unique("theirs"), "format": "csv", "upload": upload["uploadId"]},
    )  # fmt: skip
    assert stolen.status == 422 and stolen.body["error"]["details"]["fields"][0]["field"] == "upload"
    mine = create(runner, format="csv", upload=upload["uploadId"])
    assert mine.status == 201 and mine.body["rowCount"] == 1
    neither = create(runner, format="csv")
    assert neither.status == 422
