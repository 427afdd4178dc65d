"""What the OpenAPI document says of each operation: summary, description, request and error examples.

One table, applied to the document Powertools generates from the routes (`PromptLabResolver` does it for
`openapi.json`, `GET /openapi.json` and Swagger UI alike). A test checks every operation is here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptlab.core.errors import STATUS_BY_CODE
from promptlab.core.json_types import JsonObject

API_DESCRIPTION = """Run LLM prompt templates as durable, cheap, observable jobs.

Send `Authorization: Bearer <key>` (or `X-API-Key: <key>`) on every call but `/health`, `/openapi.json` and
`/docs`. `POST /generate` answers a job at once (202, or 200 for a cached result); read it with
`GET /jobs/{id}?wait=20` (long poll). Templates are named by id: `tpl_…`, `tpl_…@3` (a version) or
`tpl_…@production` (a label); the CLI and the Python client (`promptlab.client`) also take names.

Every error is `{"error": {"code", "message", "requestId", "details"}}`; a validation error lists each bad
field in `details.fields`. 429 and 503 say when to come back in `Retry-After`."""

TEMPLATE_ID = "tpl_01K9Z4Q2M7V8X3B6N1R5T0W2YA"
JOB_ID = "job_01K9Z4Q9C3D7F2H6J1K5M8P0QS"


@dataclass(frozen=True)
class Operation:
    summary: str
    description: str
    request: JsonObject | None = None
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)  # status → (code, message) of the example
    also: tuple[int, ...] = ()  # error statuses the route answers that its `responses` do not list


_GENERATE = {"templateId": f"{TEMPLATE_ID}@production", "input": {"topic": "TypeScript", "words": 300}}
_ERRORS = {  # the example of each status when an operation names none of its own
    400: ("bad_request", "the body is not valid JSON"),
    401: ("unauthorized", "send an API key: Authorization: Bearer <key> or X-API-Key: <key>"),
    402: ("budget_exceeded", "the key's monthly budget of $5.00 has $0.0012 left; this request may cost $0.0040"),
    404: ("not_found", f"no template {TEMPLATE_ID}"),
    409: ("conflict", "a template named 'blog-post' exists"),
    412: ("precondition_failed", "If-Match names version 2; the template is at version 3"),
    413: ("payload_too_large", "the rendered prompt would be 12,000,000 characters; the limit is 200,000"),
    415: ("unsupported_media_type", "send Content-Type: application/json"),
    422: ("validation_error", "the request is not valid: input.words: Input should be a valid integer"),
    429: ("rate_limited", "over 60 requests in 60 s for this key; retry after 4 s"),
    503: ("dependency_unavailable", "the database is unreachable"),
}

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/templates"): Operation(
        "Create a template",
        "A new template at version 1. `{{ variables }}` in the body are found for you; `variablesSchema` types"
        " them (JSON Schema) instead. Names are unique per tenant (409).",
        {
            "name": "blog-post",
            "body": "Write a blog post about {{ topic }} in {{ words }} words.",
            "variablesSchema": {
                "type": "object",
                "required": ["topic"],
                "properties": {"topic": {"type": "string"}, "words": {"type": "integer", "default": 300}},
            },
            "defaults": {"maxTokens": 800},
        },  # fmt: skip
    ),
    ("GET", "/templates"): Operation(
        "List templates",
        "Live templates, newest first, a page at a time (`cursor` from `nextCursor`); `q` matches names.",
    ),
    ("GET", "/templates/{id}"): Operation(
        "Read a template", "The template at its current version, with an `ETag` to send back as `If-Match`."
    ),
    ("PUT", "/templates/{id}"): Operation(
        "Change a template",
        "Replaces the template and makes a new version; earlier versions stay readable and runnable (`tpl_…@2`)."
        " With `If-Match`, a change made meanwhile answers 412.",
        {"name": "blog-post", "body": "Write a short blog post about {{ topic }}."},
    ),
    ("DELETE", "/templates/{id}"): Operation(
        "Archive a template", "It leaves the list and takes no new jobs; `POST /templates/{id}/restore` brings it back."
    ),
    ("POST", "/templates/{id}/restore"): Operation(
        "Restore an archived template", "The template is listed again and takes new jobs, at its latest version."
    ),
    ("POST", "/templates/{id}/render"): Operation(
        "Render without running",
        "What `POST /generate` would send the provider (system prompt, turns, parameters), with no job and no cost.",
        {"input": {"topic": "TypeScript"}},
    ),
    ("GET", "/templates/{id}/labels"): Operation(
        "List labels", "Each label (`production`, `staging`, …) with the version it points at, and every move."
    ),
    ("PUT", "/templates/{id}/labels/{label}"): Operation(
        "Move a label", "Point a label at a version; jobs asking for `tpl_…@label` use it from then on.", {"version": 3}
    ),
    ("GET", "/templates/{id}/versions"): Operation("List versions", "Every version of the template, oldest first."),
    ("GET", "/templates/{id}/versions/{a}/diff/{b}"): Operation(
        "Compare two versions",
        "A unified diff of the body and system prompt, and what changed in variables and defaults.",
    ),
    ("POST", "/generate"): Operation(
        "Generate",
        "Submits one generation. 202 with the queued job, or 200 with a finished one when the same input was"
        " answered within the template's cache TTL (`cacheHit`, `savedCostUSD`). The worst case is reserved from"
        " the key's budget (402 when it does not fit). Send `Idempotency-Key` to make retries safe.",
        _GENERATE,
        {409: ("conflict", "Idempotency-Key 'order-42' was used with another body")},
        also=(402, 413),
    ),
    ("POST", "/generate/batch"): Operation(
        "Generate many",
        "Up to 100 `POST /generate` bodies; each item answers alone (a job, or its own error), in order.",
        {"items": [_GENERATE, {"templateId": TEMPLATE_ID, "input": {"topic": "Rust"}, "priority": "economy"}]},
        {409: ("conflict", "Idempotency-Key 'nightly-7' was used with another body")},
    ),
    ("GET", "/jobs/{id}"): Operation(
        "Read a job",
        "The job with its output, tokens, cost and attempt history. `wait` (≤ 20 s) holds the answer until the"
        " job ends (long poll); a key holds at most 10 waits at once (429).",
        errors={404: ("not_found", f"no job {JOB_ID}"), 429: ("rate_limited", "this key already holds 10 long polls")},
    ),
    ("GET", "/jobs"): Operation(
        "List jobs", "Jobs newest first, a page at a time, filtered by status, template, provider, priority or time."
    ),
    ("DELETE", "/jobs/{id}"): Operation(
        "Purge a job",
        "Removes the job's input and output everywhere (database, cache, copies); tokens and cost stay for billing.",
        errors={404: ("not_found", f"no job {JOB_ID}"), 409: ("conflict", "the job is still running; cancel it first")},
    ),
    ("POST", "/jobs/{id}/cancel"): Operation(
        "Cancel a job",
        "A queued or running job ends `cancelled`; a call already made is still billed.",
        errors={404: ("not_found", f"no job {JOB_ID}"), 409: ("conflict", "the job already ended completed")},
    ),
    ("POST", "/jobs/{id}/retry"): Operation(
        "Retry a job",
        "A failed or cancelled job runs again with a fresh attempt budget (its worst case reserved again).",
        errors={404: ("not_found", f"no job {JOB_ID}"), 409: ("conflict", "only failed or cancelled jobs are retried")},
        also=(402,),
    ),
    ("POST", "/dlq/redrive"): Operation(
        "Redrive dead letters",
        "Sends this tenant's dead-lettered jobs again with a fresh attempt budget; jobs whose key's budget no"
        " longer covers them are listed under `refused`.",
        {"jobId": JOB_ID, "limit": 100},
    ),
    ("GET", "/batches"): Operation(
        "List provider batches", "The economy lane's provider batches (Anthropic Message Batches, OpenAI Batch)."
    ),
    ("GET", "/batches/{id}"): Operation("Read a provider batch", "Its provider id, status, counts and expiry."),
    ("GET", "/usage"): Operation(
        "Usage and cost",
        "Requests, cache hits, tokens, cost and savings of this tenant, grouped by day, provider, model or template"
        " (`from` inclusive, `to` exclusive; default: this month).",
    ),
    ("POST", "/datasets"): Operation(
        "Create a dataset",
        "Rows of `{input, expected?, metadata?}` to run template versions over (version 1): as JSON `rows`, or a"
        " JSONL or CSV file's text in `content` with its `format` (CSV: a header row; its columns are input fields,"
        " an `expected` column the expected answer). Each bad row is named with its field; names are unique per"
        " tenant (409).",
        {
            "name": "support-tickets",
            "rows": [
                {"input": {"ticket": "My invoice is wrong"}, "expected": "billing", "metadata": {"source": "zendesk"}},
                {"input": {"ticket": "The app crashes on login"}, "expected": "bug"},
            ],
        },  # fmt: skip
        {409: ("conflict", "a dataset named 'support-tickets' exists")},
    ),
    ("POST", "/datasets/uploads"): Operation(
        "Upload a large dataset file",
        "A presigned URL (15 minutes) to PUT one JSONL or CSV file of up to 100 MB with the given `Content-Type`;"
        ' then `POST /datasets` (or `PUT /datasets/{id}`) with `{"upload": uploadId, "format": …}` reads it'
        " once, checks every row and deletes the file. For files larger than a request body (1 MB locally, 10 MB"
        " behind API Gateway).",
        {"format": "jsonl"},
    ),
    ("GET", "/datasets"): Operation(
        "List datasets", "This tenant's datasets, newest first, a page at a time (`cursor` from `nextCursor`)."
    ),
    ("GET", "/datasets/{id}"): Operation(
        "Read a dataset", "The dataset at its current version: row count and the input fields its rows have."
    ),
    ("PUT", "/datasets/{id}"): Operation(
        "Replace a dataset's rows",
        "The rows (JSON, JSONL or CSV, as at creation) become the next version; earlier versions stay readable.",
        {"format": "csv", "content": "ticket,expected\nMy invoice is wrong,billing\nThe app crashes,bug\n"},
    ),
    ("DELETE", "/datasets/{id}"): Operation(
        "Delete a dataset",
        "Deletes every version and row, and the experiments run over it (their jobs keep their cost; the copies"
        " of rows and answers they hold are purged). While one of its experiments runs: 409, cancel it first.",
    ),
    ("GET", "/datasets/{id}/rows"): Operation(
        "Read a dataset's rows",
        "A page of one version's rows (default: the current one) in upload order, each with its number `n`.",
    ),
    ("POST", "/experiments"): Operation(
        "Start an experiment",
        "Runs every variant (a template version or label, optionally another provider or model) over every row"
        " of a dataset version (or a `sample` of them) as ordinary jobs: cache, budgets, rate limits, retries and"
        " the economy lane apply. The whole worst case, judges included, is reserved up front (402 naming the"
        " shortfall). Rows are checked against each variant's variables first: each bad row is named with its"
        " field (422). Scorers: `exact`, `contains`, `regex`, `json_schema`, `length`, `judge` (a template of"
        ' yours answering `{"score": 0..1}`).',
        {
            "datasetId": "ds_01K9Z4QA3B7C2D6E1F5G8H0J2K",
            "variants": [{"template": f"{TEMPLATE_ID}@production"}, {"template": f"{TEMPLATE_ID}@3"}],
            "scorers": [{"type": "contains"}, {"type": "judge", "template": "tpl_01K9Z4QB4C8D3E7F2G6H9J1K3L"}],
            "priority": "low",
        },
        errors={
            402: (
                "budget_exceeded",
                "the monthly budget of key 'ci' (5.00 USD) cannot cover this experiment's"
                " worst case of 6.20 USD: 0.40 spent and 0 reserved, 1.60 USD short",
            )
        },
    ),  # fmt: skip
    ("GET", "/experiments"): Operation("List experiments", "This tenant's experiments, newest first."),
    ("GET", "/experiments/{id}"): Operation(
        "Read an experiment",
        "Status, progress, and per variant: rows, completed, failed, cost (its own and its judges'), tokens,"
        " provider latency p50/p95, and each scorer's mean.",
    ),
    ("GET", "/experiments/{id}/results"): Operation(
        "Download an experiment's results",
        "Each row's input and expected joined with every variant's output, status, cost, latency and scores, as"
        " JSONL or CSV, `limit` rows a page; `X-Next-Cursor` names the next page.",
    ),
    ("GET", "/experiments/{id}/compare"): Operation(
        "Compare two variants",
        "Per-row differences of variants `a` and `b` (largest first) and the deltas of score (b − a, with a"
        " 95 % paired bootstrap interval), cost and latency p50; `scorer` picks one scorer, else the mean of all.",
    ),
    ("POST", "/experiments/{id}/cancel"): Operation(
        "Cancel an experiment",
        "Jobs not yet started are cancelled and what the experiment held of the budget is released; calls under"
        " way finish and are billed. 409 when it already ended.",
    ),
    ("POST", "/experiments/{id}/promote"): Operation(
        "Promote a variant",
        "Points a label (default `production`) of the variant's template at the variant's version; the label"
        " history records the experiment. 409 while the experiment runs.",
        {"variant": 1, "label": "production"},
    ),
    ("GET", "/health"): Operation(
        "Health", "Whether the database and Redis answer (200, or 503 naming the one that does not). No key needed."
    ),
}

PUBLIC = {("GET", "/health")}


def _error_example(code: str, message: str) -> JsonObject:
    details: JsonObject = {}
    if code == "validation_error":
        details = {"fields": [{"field": "input.words", "message": "Input should be a valid integer"}]}
    return {"error": {"code": code, "message": message, "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                      "details": details}}  # fmt: skip


def enrich(document: JsonObject) -> JsonObject:
    """The document with each operation's summary, description and examples, and 401 on every keyed route."""
    document["info"]["description"] = API_DESCRIPTION
    components = document.setdefault("components", {})
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (`pl_…`)."},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            key = (method.upper(), path)
            about = OPERATIONS.get(key)
            if about is None:
                continue
            operation["summary"], operation["description"] = about.summary, about.description
            responses: dict[str, Any] = operation["responses"]
            if key in PUBLIC:
                operation["security"] = []
            else:
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
                for status in (401, *about.also):
                    responses.setdefault(
                        str(status), {"description": "Error", "content": _error_content(status, about)}
                    )
            if about.request is not None and "requestBody" in operation:
                operation["requestBody"]["content"]["application/json"]["example"] = about.request
            for code, answer in responses.items():
                if int(code) >= 400:
                    answer["content"] = _error_content(int(code), about, answer.get("content"))
    return document


def _error_content(status: int, about: Operation, content: Any = None) -> JsonObject:
    code, message = about.errors.get(status) or _ERRORS.get(status) or (_code_of(status), "see `message`")
    media: JsonObject = dict((content or {}).get("application/json") or {})
    media.setdefault("schema", {"$ref": "#/components/schemas/ErrorBody"})
    media["example"] = _error_example(code, message)
    return {"application/json": media}


def _code_of(status: int) -> str:
    return next((code for code, known in STATUS_BY_CODE.items() if known == status), "internal_error")
