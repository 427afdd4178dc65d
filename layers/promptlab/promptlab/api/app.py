"""The API: one resolver, the routes of every resource, the fast path, and the OpenAPI document."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from promptlab.api.declared import route
from promptlab.api.docs import enable_docs
from promptlab.api.fast_chat import chat_fast, prepare_chat
from promptlab.api.fast_generate import generate_fast, prepare_generate
from promptlab.api.resolver import PromptLabResolver, register_error_handlers
from promptlab.api.routes import (
    admin,
    datasets,
    experiments,
    generation,
    jobs,
    openai,
    openai_batches,
    operations,
    templates,
)
from promptlab.core.json_types import JsonObject

API_TITLE = "PromptLab API"
API_VERSION = "0.1.0"

app = PromptLabResolver(enable_validation=True)
register_error_handlers(app)
for module in (templates, generation, jobs, operations, datasets, experiments, openai, openai_batches, admin):
    app.include_router(module.router)
app.fast_path("POST", "/generate", prepare=prepare_generate)(generate_fast)
app.fast_path("POST", "/v1/chat/completions", prepare=prepare_chat)(chat_fast)
enable_docs(app, title=API_TITLE, version=API_VERSION)


def openapi_document() -> JsonObject:
    """The OpenAPI document of this API."""
    document: JsonObject = app.get_openapi_schema(title=API_TITLE, version=API_VERSION).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return document


@route(app, "GET", "/openapi.json", event="OpenApi", public=True, documented=False)
def get_openapi() -> Response[str]:
    return Response(
        status_code=200,
        content_type="application/json",
        body=app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION),
    )
