"""HTTP for the client: the standard library only, retries on 429/503 that honour `Retry-After`."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from promptlab.client.errors import ApiError, ApiUnreachable, error_from_answer

USER_AGENT = "promptlab-client/0.1"
RETRIED_STATUSES = frozenset({429, 503})  # answers that say the request was not accepted: safe to send again


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before sending a refused request again (jittered exponential backoff)."""

    max_retries: int = 3
    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds before retry number `retry` (1-based): the server's `Retry-After` when it sent one."""
        if retry_after is not None:
            return min(retry_after, self.max_seconds)
        backoff: float = min(self.max_seconds, self.base_seconds * 2 ** (retry - 1))
        return backoff * random.uniform(0.5, 1.0)


@dataclass
class Transport:
    """Sends one API call and returns its JSON, or raises a typed error."""

    base_url: str
    api_key: str | None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The answer's JSON (None for 204); retries 429 and 503 up to `retry.max_retries` times."""
        text, _ = self.call_text(method, path, body=body, query=query, headers=headers, timeout=timeout)
        return json.loads(text) if text else None

    def call_text(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[str, dict[str, str]]:
        """The answer's text and headers (a CSV or JSON Lines download); retries 429 and 503 like `call`."""
        retries = 0
        while True:
            try:
                return self._send_once(method, path, body=body, query=query, headers=headers, timeout=timeout)
            except ApiError as exc:
                if exc.status not in RETRIED_STATUSES or retries >= self.retry.max_retries:
                    raise
                retries += 1
                self.sleep(self.retry.delay(retries, exc.retry_after))

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        """The full URL of a path with its query (None values left out)."""
        pairs = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        return self.base_url.rstrip("/") + path + (f"?{urllib.parse.urlencode(pairs)}" if pairs else "")

    def _send_once(
        self,
        method: str,
        path: str,
        *,
        body: Any,
        query: dict[str, Any] | None,
        headers: dict[str, str] | None,
        timeout: float | None,
    ) -> tuple[str, dict[str, str]]:
        url = self.url(path, query)
        data = json.dumps(body, default=str).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("User-Agent", USER_AGENT)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:
                text = answer.read()
                answer_headers = dict(answer.headers.items())
        except urllib.error.HTTPError as exc:
            raise error_from_answer(exc.code, exc.read(), dict(exc.headers.items())) from None
        except urllib.error.URLError as exc:
            raise ApiUnreachable(self.base_url, exc.reason) from exc
        except (TimeoutError, ConnectionError) as exc:
            raise ApiUnreachable(self.base_url, exc) from exc
        return text.decode("utf-8"), answer_headers


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
