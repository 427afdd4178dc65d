"""The web console: static files served by `ConsoleFunction` at `/` (plain HTML, CSS and JS; no build step).

The page calls the API with relative URLs (it works under a stage path such as `/v1/`) and keeps the API
key in the browser's session storage only.
"""

from __future__ import annotations

from importlib import resources

from promptlab.core.json_types import LambdaEvent

ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _file(name: str) -> str:
    return (resources.files("promptlab.console") / "static" / name).read_text(encoding="utf-8")


def respond(event: LambdaEvent) -> LambdaEvent:
    """An API Gateway proxy answer for `/` (the page) or `/assets/{name}`."""
    name = ((event.get("pathParameters") or {}).get("name")) or ""
    if event.get("resource") == "/" or event.get("path") in {"/", ""}:
        body, kind, cache = _file("index.html"), "text/html; charset=utf-8", "no-cache"
    elif name in ASSETS:
        body, kind, cache = _file(name), ASSETS[name], "public, max-age=300"
    else:
        return {
            "statusCode": 404,
            "headers": {"Content-Type": "text/plain; charset=utf-8", **SECURITY_HEADERS},
            "body": "not found",
            "isBase64Encoded": False,
        }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": kind, "Cache-Control": cache, **SECURITY_HEADERS},
        "body": body,
        "isBase64Encoded": False,
    }
