"""Swagger UI at `/docs`: Powertools' `enable_swagger`, its assets served from this origin, under a strict CSP.

The page loads `docs/swagger-ui-bundle.min.js` and `docs/swagger-ui.min.css` (relative, so it works under a
stage path such as `/Prod/docs`) from the copies Powertools ships, and its one inline script (the document
and Swagger UI's options) is allowed by its SHA-256 hash, never by `'unsafe-inline'`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_ui
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

DOCS_PATH = "/docs"
ASSETS = {
    "swagger-ui-bundle.min.js": "text/javascript; charset=utf-8",
    "swagger-ui.min.css": "text/css; charset=utf-8",
}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(html: str) -> str:
    """The page's CSP: scripts from this origin plus the page's own inline scripts by hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def _with_csp(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[str]:
    answer: Response[str] = next_middleware(app)
    if isinstance(answer.body, str) and answer.body.lstrip().startswith("<!DOCTYPE html>"):
        answer.headers["Content-Security-Policy"] = content_security_policy(answer.body)
        answer.headers["X-Content-Type-Options"] = "nosniff"
        answer.headers["Referrer-Policy"] = "no-referrer"
        answer.headers["Cache-Control"] = "no-cache"
    return answer


@cache
def _asset(name: str) -> str:
    return (Path(swagger_ui.__file__).parent / name).read_text(encoding="utf-8")


def enable_docs(app: APIGatewayRestResolver, *, title: str, version: str) -> None:
    """`GET /docs` (Swagger UI of this API) and `GET /docs/{asset}`; none of them is in the document."""
    app.enable_swagger(
        path=DOCS_PATH,
        title=title,
        version=version,
        swagger_base_url="docs",
        middlewares=[_with_csp],
        compress=True,
    )

    @app.get(f"{DOCS_PATH}/<name>", include_in_schema=False, compress=True)
    def docs_asset(name: str) -> Response[str]:
        if name not in ASSETS:
            return Response(status_code=404, content_type="text/plain; charset=utf-8", body="not found")
        return Response(
            status_code=200,
            content_type=ASSETS[name],
            body=_asset(name),
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )
