"""A small HTTP client of the PromptLab API, for the CLI (`promptlab generate`)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptlab.core.json_types import JsonObject


class ApiError(Exception):
    """An error answer of the API, with its code and message."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = str(error.get("code", "http_error"))
        self.details = error.get("details") or {}
        super().__init__(f"{status} {self.code}: {error.get('message', body)}")


def default_key() -> str | None:
    """`PROMPTLAB_API_KEY`, else the local runner's development key."""
    key = os.environ.get("PROMPTLAB_API_KEY")
    if key:
        return key
    path = Path(os.environ.get("PROMPTLAB_DATA_DIR", "~/.promptlab")).expanduser() / "dev-api-key"
    return path.read_text().strip() if path.is_file() else None


@dataclass
class Client:
    base_url: str
    api_key: str | None
    timeout: float = 30.0

    def call(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        url = self.base_url.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                text = answer.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ApiError(exc.code, parsed) from exc
        return json.loads(text) if text else None

    def template_id(self, name_or_id: str) -> str:
        """A template id from an id or an exact name."""
        if name_or_id.startswith("tpl_"):
            return name_or_id
        page = self.call("GET", "/templates", query={"q": name_or_id, "limit": "100"})
        for item in page["items"]:
            if item["name"] == name_or_id:
                return str(item["id"])
        raise ApiError(404, {"error": {"code": "not_found", "message": f"no template named {name_or_id!r}"}})

    def wait(self, job_id: str, seconds_each: int = 20) -> JsonObject:
        """Long-poll the job until it ends."""
        while True:
            job: JsonObject = self.call("GET", f"/jobs/{job_id}", query={"wait": str(seconds_each)})
            if job["status"] in {"completed", "failed", "cancelled"}:
                return job
