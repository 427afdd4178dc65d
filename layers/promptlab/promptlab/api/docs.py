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

import aws_lambda_powertools.event_handler as event_handler
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver

from promptlab.api.declared import route

DOCS_PATH = "/docs"
ASSETS = {
    "swagger-ui-bundle.min.js": "text/javascript; charset=utf-8",
    "swagger-ui.min.css": "text/css; charset=utf-8",
}
# Powertools' copy of Swagger UI, found without importing its module (which builds the OpenAPI models).
SWAGGER_UI = Path(event_handler.__file__).parent / "openapi" / "swagger_ui"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


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


@cache
def _asset(name: str) -> str:
    return (SWAGGER_UI / name).read_text(encoding="utf-8")


def docs_page(app: APIGatewayRestResolver, *, title: str, version: str) -> str:
    """Swagger UI's page (Powertools' generator) holding this API's document, its assets from `docs/`."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    spec = app.get_openapi_json_schema(title=title, version=version).replace("</", "<\\/")
    swagger_base = "docs"  # relative: it works under a stage path such as /Prod/docs
    return generate_swagger_html(
        spec, f"{swagger_base}/swagger-ui-bundle.min.js", f"{swagger_base}/swagger-ui.min.css", swagger_base, None
    )


def enable_docs(app: APIGatewayRestResolver, *, title: str, version: str) -> None:
    """`GET /docs` (Swagger UI of this API) and `GET /docs/{asset}`; none of them is in the document.

    Powertools' `enable_swagger` imports Swagger UI's OAuth2 and OpenAPI models when the route is registered,
    which cost every cold start of the API ~140 ms; here the page is made by the same Powertools generator
    on its first request, and kept.
    """
    page: list[str] = []

    @route(app, "GET", DOCS_PATH, event="Docs", public=True, documented=False, compress=True)
    def docs() -> Response[str]:
        if not page:
            page.append(docs_page(app, title=title, version=version))
        html = page[0]
        headers = {"Content-Security-Policy": content_security_policy(html), "Cache-Control": "no-cache"}
        return Response(
            status_code=200, content_type="text/html; charset=utf-8", body=html, headers={**headers, **SECURITY_HEADERS}
        )

    @route(app, "GET", f"{DOCS_PATH}/<name>", event="DocsAssets", public=True, documented=False, compress=True)
    def docs_asset(name: str) -> Response[str]:
        if name not in ASSETS:
            return Response(status_code=404, content_type="text/plain; charset=utf-8", body="not found")
        return Response(
            status_code=200,
            content_type=ASSETS[name],
            body=_asset(name),
            headers={"Cache-Control": "public, max-age=86400", **SECURITY_HEADERS},
        )
