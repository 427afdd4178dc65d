"""How routes shape their answers: JSON bodies, OpenAPI response docs, and the rules both paths share."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from promptlab.models.jobs import JobPublic
from promptlab.models.wire import ErrorBody


def doc(status: int, model: type[BaseModel] | None, description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses: the success model and the error statuses a route can answer."""
    ok: OpenAPIResponse = {"description": description}
    if model is not None:
        ok["content"] = {"application/json": {"model": model}}
    documented: dict[int, OpenAPIResponse] = {status: ok}
    for error in errors:
        documented[error] = {"description": "Error", "content": {"application/json": {"model": ErrorBody}}}
    return documented


def json_response(status: int, model: BaseModel, headers: dict[str, str] | None = None) -> Response[str]:
    """A JSON answer of a wire model (camelCase)."""
    return Response(
        status_code=status, content_type="application/json", body=model.model_dump_json(by_alias=True), headers=headers
    )


def no_content() -> Response[str]:
    """204."""
    return Response(status_code=204, body="")


def generation_status(job: JobPublic) -> int:
    """`POST /generate` answers 202 for a job still to run, 200 for one already finished (a cache hit)."""
    return 202 if job.status in {"queued", "processing"} else 200


def job_location(job_id: str) -> dict[str, str]:
    """Where a generated job is read."""
    return {"Location": f"/jobs/{job_id}"}
