"""The web console in a real browser (Debian's Chromium driven by Playwright) against `promptlab local`.

Screenshots of every page are kept in `.artifacts/screenshots/` (the README's come from there).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from tests.support.local_stack import KEYS, request, running_stack

pytestmark = pytest.mark.e2e

SHOTS = ROOT / ".artifacts" / "screenshots"


def chromium() -> str:
    found = os.environ.get("PROMPTLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: `./dev test` installs Debian's chromium package")
        pytest.skip("no Chromium here (Debian: apt-get install chromium); CI installs it")
    return found


DATA: dict[str, Path] = {}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("console")
    # Each fake answer takes 3 s, so a person (or this test) has time to cancel a running job.
    with running_stack(data, {"PROMPTLAB_FAKE_LATENCY_MS": "3000"}) as base:
        DATA[base] = data
        yield base


def sql(console: str, query: str, *params: Any) -> None:
    import json

    import psycopg

    url = json.loads((DATA[console] / "local-stack.json").read_text())["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(query, params)


@pytest.fixture(scope="module")
def page(console: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.set_default_timeout(15_000)
        yield tab
        browser.close()
        assert errors == [], errors


def sign_in(page: Any, console: str) -> None:
    page.goto(console + "/")
    page.evaluate(f"sessionStorage.setItem('promptlab.apiKey', {KEYS[console]!r})")


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_person_can_do_the_whole_job_in_the_console(console: str, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(console + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill("pl_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#notice")).to_contain_text("refused")  # errors in plain words
    page.get_by_label("API key").fill(KEYS[console])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Templates")).to_be_visible()

    # A template with a variable schema.
    name = f"console-{uuid.uuid4().hex[:6]}"
    page.get_by_role("button", name="New template").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Body").fill("Write {{ words }} words about {{ topic }}.")
    expect(page.locator("#vars")).to_contain_text("words")
    schema = (
        '{"type": "object", "properties": {"topic": {"type": "string", "description": "What about"},'
        ' "words": {"type": "integer", "minimum": 10, "default": 50}}, "required": ["topic"]}'
    )
    page.get_by_label("Variable schema (JSON Schema, optional)").fill(schema)
    page.get_by_role("button", name="Create template").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    template_id = page.url.rsplit("/", 1)[1]

    # Preview, then a second version and a label.
    page.get_by_role("button", name="Preview render").click()
    expect(page.locator("#rendered")).to_contain_text("Write 50 words about")
    expect(page.locator("#rendered")).to_contain_text("Worst-case cost")
    page.get_by_label("Body").fill("Write {{ words }} short words about {{ topic }}.")
    page.get_by_role("button", name="Save new version").click()
    expect(page.get_by_role("heading", name=f"{name} v2")).to_be_visible()
    page.get_by_label("Version", exact=True).fill("2")
    page.get_by_role("button", name="Move label").click()
    expect(page.locator("#labels")).to_contain_text("production → v2")
    page.get_by_role("button", name="diff v1 → v2").click()
    expect(page.locator("#diff")).to_contain_text("+Write {{ words }} short words")
    shot(page, "template")
    page.goto(console + "/#/templates")
    expect(page.get_by_role("link", name=name)).to_be_visible()
    shot(page, "templates")

    # Generate from the form the schema made, and watch the job finish.
    page.goto(console + f"/#/generate?template={template_id}")
    expect(page.locator("#provider option")).to_have_text(
        ["template default", "anthropic", "openai", "openai-compatible", "bedrock", "fake"]
    )
    page.get_by_label("topic * — What about").fill("message queues")
    page.get_by_label("Version or label (optional)").fill("production")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#job .badge.completed")).to_be_visible()
    expect(page.locator("#output")).to_contain_text("Fake answer for: Write 50 short words about message queues")
    shot(page, "generate")

    # The jobs list shows it; usage counts it.
    page.goto(console + "/#/jobs")
    expect(page.locator("#jobs .badge.completed").first).to_be_visible()
    shot(page, "jobs")
    page.goto(console + "/#/usage")
    expect(page.locator("#usage")).to_contain_text("fake:fake-1")
    expect(page.locator(".stat").first).to_contain_text("Requests")
    shot(page, "usage")

    # Dark mode, kept across pages; and a phone-sized screen still works.
    page.get_by_role("button", name="Toggle dark mode").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    shot(page, "usage-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(console + "/#/jobs")
    expect(page.locator("#jobs .badge.completed").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(page, "jobs-phone")
    # The key lives in session storage only.
    assert page.evaluate("localStorage.getItem('promptlab.apiKey')") is None
    assert page.evaluate("sessionStorage.getItem('promptlab.apiKey')") == KEYS[console]


def test_cancel_and_retry_from_the_jobs_list(console: str, page: Any) -> None:
    from playwright.sync_api import expect

    name = f"c-{uuid.uuid4().hex[:6]}"
    status, _, template = request(console, "POST", "/templates", {"name": name, "body": "{{ x }}"})
    assert status == 201
    status, _, running = request(console, "POST", "/generate", {"templateId": template["id"], "input": "cancel me"})
    assert status == 202
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, console)
    page.goto(console + "/#/jobs")
    page.locator(f'[data-cancel="{running["id"]}"]').click()
    expect(page.locator("#notice")).to_contain_text(f"Job {running['id']} is cancelled")

    status, _, done = request(console, "POST", "/generate", {"templateId": template["id"], "input": "retry me"})
    request(console, "GET", f"/jobs/{done['id']}?wait=15")
    sql(
        console,
        'UPDATE jobs SET status = \'failed\', error = \'{"code": "timeout", "message": "x"}\' WHERE id = %s',
        done["id"],
    )
    page.goto(console + "/#/jobs?status=failed")
    page.locator(f'[data-retry="{done["id"]}"]').click()
    expect(page.locator("#notice")).to_contain_text(f"Job {done['id']} is queued")
    page.goto(console + f"/#/jobs?job={done['id']}")
    expect(page.locator("#detail .badge.completed")).to_be_visible()


def test_the_api_docs_render_from_the_console_under_its_csp(console: str, page: Any) -> None:
    from playwright.sync_api import expect

    sign_in(page, console)
    link = page.locator('nav a[href="docs"]')
    expect(link).to_have_text("API docs")
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security" in message.text else None)
    answer = page.goto(console + "/docs")
    assert answer is not None and answer.status == 200
    policy = answer.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0] and "'sha256-" in policy
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("PromptLab API")
    expect(page.locator(".opblock-summary-description", has_text="Generate many")).to_be_visible()
    page.locator(".opblock-summary", has_text="/generate/batch").first.click()
    expect(page.locator(".opblock-body").first).to_contain_text("items")
    shot(page, "api-docs")
    assert violations == []
    # The assets come from this origin (no CDN)
    import urllib.request

    with urllib.request.urlopen(console + "/docs/swagger-ui.min.css", timeout=10) as css:
        assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")


def test_upload_a_dataset_run_an_experiment_compare_and_promote(
    console: str, page: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import expect

    sign_in(page, console)
    name = f"tickets-{uuid.uuid4().hex[:6]}"
    late = "Read the customer's message below with care and then give it a label. Message: {{ ticket }}"
    made = request(console, "POST", "/templates", {"name": name, "body": late})[2]
    request(console, "PUT", f"/templates/{made['id']}", {"name": name, "body": "Label: {{ ticket }}"})
    judge = request(
        console, "POST", "/templates", {"name": f"judge-{name}", "body": "{{ input }} {{ expected }} {{ output }}"}
    )
    assert judge[0] == 201, judge
    data = tmp_path_factory.mktemp("upload") / "tickets.jsonl"
    data.write_text("".join(f'{{"input": {{"ticket": "refund{i} now"}}, "expected": "refund{i}"}}\n' for i in range(5)))

    # Upload the file and browse its rows
    page.goto(console + "/#/datasets")
    page.get_by_label("Name").fill(name)
    page.get_by_label("JSONL or CSV file").set_input_files(str(data))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#rows")).to_contain_text("refund4 now")
    shot(page, "dataset")

    # Start an experiment from the form: version 1 against version 2, contains and a judge
    page.get_by_role("link", name="Run an experiment on it").click()
    page.locator("#vt0").select_option(made["id"])
    page.locator("#vv0").fill("1")
    page.locator("#vt1").select_option(made["id"])
    page.locator("#vv1").fill("2")
    page.get_by_label("judge with").check()
    page.get_by_label("Judge template").select_option(judge[2]["id"])
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#xstatus .badge.completed")).to_be_visible(timeout=90_000)
    cells = page.locator('#variants-table td[data-score="contains"]')
    expect(cells).to_have_text(["0.000", "1.000"])
    expect(page.locator('#variants-table td[data-score="judge"]').first).not_to_have_text("—")
    shot(page, "experiment")

    # Compare, promote the better one, and download the results
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator("#compare-summary")).to_contain_text("5 better, 0 worse")
    page.locator('[data-promote="1"]').click()
    expect(page.locator("#notice")).to_contain_text("production now points at version 2")
    labels = request(console, "GET", f"/templates/{made['id']}/labels")[2]
    assert labels["labels"][0]["version"] == 2 and labels["moves"][0]["experimentId"]
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    text = Path(download.value.path()).read_text()
    assert text.startswith("row,input,expected,v0_status") and text.count("\n") == 6
    shot(page, "experiment-compare")


def test_a_job_shows_its_images_and_tool_calls(console: str, page: Any) -> None:
    from playwright.sync_api import expect

    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    status, _, template = request(console, "POST", "/templates", {"name": f"tools-{uuid.uuid4().hex[:6]}", "body": "x"})
    assert status == 201
    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    status, _, job = request(console, "POST", "/generate", {
        "templateId": template["id"], "tools": [weather],
        "messages": [{"role": "user", "content": "Weather here?",
                      "attachments": [{"mediaType": "image/png", "data": png}]}],
    })  # fmt: skip
    assert status == 202
    request(console, "GET", f"/jobs/{job['id']}?wait=10")
    sign_in(page, console)
    page.goto(console + f"/#/jobs?job={job['id']}")
    expect(page.locator("#tool-calls")).to_contain_text('get_weather({"city": "x"})')
    expect(page.locator("img.attachment")).to_be_visible()
    shot(page, "job-tools")


def test_an_admin_makes_a_key_and_reads_the_history(console: str, page: Any) -> None:
    from playwright.sync_api import expect

    sign_in(page, console)
    page.goto(console + "/#/keys")
    name = f"svc-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(name)
    page.get_by_label("templates:write").check()
    page.get_by_role("button", name="Make key").click()
    expect(page.locator("#newsecret")).to_contain_text("pl_")
    made = page.locator("#newsecret").inner_text().strip()
    expect(page.locator("#keys")).to_contain_text(name)
    expect(page.locator("#keys")).to_contain_text("read, generate, templates:write")
    expect(page.locator("#history")).to_contain_text("key.created")
    shot(page, "keys")
    # The key works with the scopes chosen, and no more
    assert request(console, "GET", "/templates", key=made)[0] == 200
    assert request(console, "POST", "/datasets", {"name": "x", "rows": [{"input": {"a": "b"}}]}, key=made)[0] == 403
