"""What the OpenAPI document adds to Powertools' from the routes' declarations: examples, security, errors.

Each route declares its summary, description and examples where it is registered (`api/declared.py`);
`enrich` applies them to the document Powertools generates (`PromptLabResolver` does it for `openapi.json`,
`GET /openapi.json` and Swagger UI alike).
"""

from __future__ import annotations

from typing import Any

from promptlab.api.declared import DECLARED, Declared
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


GENERATE_EXAMPLE = {"templateId": f"{TEMPLATE_ID}@production", "input": {"topic": "TypeScript", "words": 300}}
_ERRORS = {  # the example of each status when an operation names none of its own
    400: ("bad_request", "the body is not valid JSON"),
    401: ("unauthorized", "send an API key: Authorization: Bearer <key> or X-API-Key: <key>"),
    402: ("budget_exceeded", "the key's monthly budget of $5.00 has $0.0012 left; this request may cost $0.0040"),
    403: ("forbidden", "this API key lacks the 'templates:write' scope; it holds: generate, read"),
    404: ("not_found", f"no template {TEMPLATE_ID}"),
    409: ("conflict", "a template named 'blog-post' exists"),
    412: ("precondition_failed", "If-Match names version 2; the template is at version 3"),
    413: ("payload_too_large", "the rendered prompt would be 12,000,000 characters; the limit is 200,000"),
    415: ("unsupported_media_type", "send Content-Type: application/json"),
    422: ("validation_error", "the request is not valid: input.words: Input should be a valid integer"),
    429: ("rate_limited", "over 60 requests in 60 s for this key; retry after 4 s"),
    503: ("dependency_unavailable", "the database is unreachable"),
}


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
            about = DECLARED.get((method.upper(), path))
            if about is None:
                continue
            responses: dict[str, Any] = operation["responses"]
            if about.path.startswith("/v1/"):
                responses.pop("422", None)  # the OpenAI door answers a bad parameter with OpenAI's 400
            if about.public:
                operation["security"] = []
            else:
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
                needs = " or ".join(f"`{one}`" for one in (about.scope or "").split("|"))
                operation["description"] = f"{operation.get('description', '')}\n\nNeeds the {needs} scope."
                for status in (401, 403, *about.also):
                    responses.setdefault(
                        str(status), {"description": "Error", "content": _error_content(status, about)}
                    )
            if about.request is not None:  # a route that reads its body itself has no model: the example stands alone
                body = operation.setdefault("requestBody", {"required": True, "content": {"application/json": {}}})
                body["content"]["application/json"]["example"] = about.request
            for code, answer in responses.items():
                if int(code) >= 400:
                    answer["content"] = _error_content(int(code), about, answer.get("content"))
    return document


_OPENAI_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
}  # fmt: skip
_OPENAI_ERRORS = {  # status → (type, code, param, message) of the example
    400: ("invalid_request_error", "unsupported_parameter", "tools", "Unrecognized request argument supplied: tools"),
    401: ("invalid_request_error", "invalid_api_key", None, "the API key is unknown or revoked"),
    403: ("invalid_request_error", "forbidden", None, "this API key lacks the 'generate' scope; it holds: read"),
    404: ("invalid_request_error", "model_not_found", "model", "The model `gpt-9` does not exist"),
    409: ("invalid_request_error", "conflict", None, "Idempotency-Key 'order-42' was used with another body"),
    429: ("requests", "rate_limit_exceeded", None, "over 60 requests in 60 s for this key; retry after 4 s"),
    503: ("server_error", "service_unavailable", None, "the database is unreachable"),
}


def _error_content(status: int, about: Declared, content: Any = None) -> JsonObject:
    if about.path.startswith("/v1/"):  # the OpenAI-compatible door answers OpenAI's error shape
        kind, openai_code, param, text = _OPENAI_ERRORS.get(status, ("server_error", None, None, "see `message`"))
        example = {"error": {"message": text, "type": kind, "param": param, "code": openai_code}}
        return {"application/json": {"schema": _OPENAI_ERROR_SCHEMA, "example": example}}
    code, message = about.errors.get(status) or _ERRORS.get(status) or (_code_of(status), "see `message`")
    media: JsonObject = dict((content or {}).get("application/json") or {})
    media.setdefault("schema", {"$ref": "#/components/schemas/ErrorBody"})
    media["example"] = _error_example(code, message)
    return {"application/json": media}


def _code_of(status: int) -> str:
    return next((code for code, known in STATUS_BY_CODE.items() if known == status), "internal_error")
