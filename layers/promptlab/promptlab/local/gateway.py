"""A concurrent HTTP server turning requests into API Gateway REST proxy events (`sam local start-api`)."""

from __future__ import annotations

import base64
import gzip
import socket
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from promptlab.api.errors import CODE_BY_STATUS, error_payload, status_of
from promptlab.api.pipeline import body_limit
from promptlab.core.json_types import LambdaEvent
from promptlab.core.observability import logger
from promptlab.local.stack import ACCOUNT_ID, Route, Stack

Invoke = Callable[[str, LambdaEvent], Any]


def proxy_event(
    *, route: Route, path_params: dict[str, str], method: str, raw_path: str, headers: list[tuple[str, str]],
    body: bytes, source_ip: str, stage: str = "local",
) -> LambdaEvent:  # fmt: skip
    """The REST API (v1) proxy event API Gateway would send for this request."""
    split = urlsplit(raw_path)
    query = parse_qs(split.query, keep_blank_values=True)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    try:
        text, encoded = (body.decode("utf-8"), False) if body else (None, False)
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    return {
        "resource": route.path,
        "path": split.path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": route.path,
            "httpMethod": method,
            "path": f"/{stage}{split.path}",
            "stage": stage,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "domainName": multi_headers.get("Host", ["127.0.0.1"])[-1],
            "identity": {
                "sourceIp": source_ip,
                "userAgent": multi_headers.get("User-Agent", [None])[-1],
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "cognitoIdentityPoolId": None,
                "cognitoIdentityId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
            },  # fmt: skip
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class GatewayServer(ThreadingHTTPServer):
    """One thread per connection; keep-alive connections reuse theirs."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], stack: Stack, invoke: Invoke, *, share_port: bool = False) -> None:
        # Several runner processes may listen on one port; the kernel spreads connections between them.
        self.allow_reuse_port = share_port
        super().__init__(address, GatewayHandler)
        self.stack = stack
        self.invoke = invoke

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is normal (load tools do it at the end); log the rest."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatewayServer
    # Every read and write on the connection gives up after this long: a request line, headers or a body that
    # never arrive (or an idle keep-alive connection) free their thread instead of holding it for ever.
    timeout = 30

    def setup(self) -> None:
        super().setup()
        # Headers and body leave as separate writes: without this, Nagle + delayed ACK add ~40 ms a request.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        logger.debug("http", line=format % args)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, code: str, message: str) -> None:
        """An answer of the gateway itself, in our error shape with a request id (GatewayResponses in AWS)."""
        request_id = str(uuid.uuid4())
        body = error_payload(code=code, message=message, request_id=request_id, details={}).encode()
        self._send(status_of(code), {"Content-Type": "application/json", "X-Request-Id": request_id}, body)

    def _compressed(self, headers: dict[str, str], payload: bytes) -> bytes:
        """gzip as API Gateway does with MinimumCompressionSize: large answers, for clients that accept it."""
        threshold = self.server.stack.minimum_compression_size
        accepts = "gzip" in (self.headers.get("Accept-Encoding") or "").lower()
        already = any(k.lower() == "content-encoding" for k in headers)
        if threshold is None or not accepts or already or len(payload) < threshold:
            return payload
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = ", ".join(filter(None, [headers.get("Vary"), "Accept-Encoding"]))
        return gzip.compress(payload, compresslevel=5)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:  # noqa: ARG002
        """The stdlib's own errors (an unknown method, a malformed request line) in our error shape."""
        self.close_connection = True
        if code == 501:  # a method no route has: API Gateway answers it like an unknown route
            self._error("not_found", f"no route for {self.command} {urlsplit(self.path).path}")
            return
        self._error(CODE_BY_STATUS.get(code, "bad_request"), message or "the request could not be read")

    def _handle(self) -> None:
        started = time.perf_counter()
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._error("length_required", "send a Content-Length; chunked bodies are not supported")
            return
        size = _content_length(length)
        if size is None:
            self.close_connection = True
            self._error("bad_request", "the Content-Length header is not a number of bytes")
            return
        path = urlsplit(self.path).path
        if size > (limit := body_limit(path)):  # refused before reading: a huge body never reaches memory
            self.close_connection = True
            self._error("payload_too_large", f"the request body is larger than {limit} bytes")
            return
        body = self.rfile.read(size) if size else b""
        found = self.server.stack.route_for(self.command, path)
        if found is None:
            self._error("not_found", f"no route for {self.command} {path}")
            return
        route, params = found
        event = proxy_event(
            route=route,
            path_params=params,
            method=self.command,
            raw_path=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        try:
            answer = self.server.invoke(route.function, event)
        except Exception:
            logger.exception("function failed", function=route.function)
            self._error("bad_gateway", "the function failed; see the runner's log")
            return
        if not isinstance(answer, dict) or "statusCode" not in answer:
            self._error("bad_gateway", "the function returned no API Gateway proxy response")
            return
        headers = {k: str(v) for k, v in (answer.get("headers") or {}).items()}
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(str(v) for v in values)
        raw = answer.get("body") or ""
        payload = base64.b64decode(raw) if answer.get("isBase64Encoded") else str(raw).encode("utf-8")
        payload = self._compressed(headers, payload)
        self._send(int(answer["statusCode"]), headers, payload)
        logger.debug("request", method=self.command, path=path, ms=round((time.perf_counter() - started) * 1000, 2))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle


def _content_length(value: str | None) -> int | None:
    """The body's size from its header (0 without one); None when the header is not a plain byte count."""
    if value is None:
        return 0
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else None
