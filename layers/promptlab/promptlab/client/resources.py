"""`client.templates` and `client.jobs`: the API's templates and jobs as typed resources."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from promptlab.client.errors import JobWaitTimeout, NotFound
from promptlab.client.transport import Transport
from promptlab.models.jobs import JobPublic, JobSummary
from promptlab.models.templates import TemplateLabels, TemplatePublic

Job = JobPublic
ENDED = frozenset({"completed", "failed", "cancelled"})


def camel(name: str) -> str:
    """`template_id` → `templateId` (the API's field names)."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Templates:
    """`client.templates`: create, read, list and label templates."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def create(self, name: str, body: str, **fields: Any) -> TemplatePublic:
        """A new template (fields: `system`, `description`, `defaults`, `variables`, `cacheTtlSeconds`, …)."""
        return TemplatePublic.model_validate(
            self._http.call("POST", "/templates", body={"name": name, "body": body, **fields})
        )

    def get(self, template_id: str) -> TemplatePublic:
        return TemplatePublic.model_validate(self._http.call("GET", f"/templates/{template_id}"))

    def list(self, *, q: str | None = None, page_size: int = 100) -> Iterator[TemplatePublic]:
        """Every live template (matching `q`), page after page."""
        cursor: str | None = None
        while True:
            page = self._http.call("GET", "/templates", query={"q": q, "limit": page_size, "cursor": cursor})
            yield from (TemplatePublic.model_validate(item) for item in page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def resolve(self, reference: str) -> str:
        """The API's reference for a template id or exact name, keeping an `@label` or `@version` suffix."""
        name, at, suffix = reference.partition("@")
        if name.startswith("tpl_"):
            return reference
        for template in self.list(q=name):
            if template.name == name:
                return template.id + (at + suffix if at else "")
        raise NotFound(404, "not_found", f"no template named {name!r}", details={"template": name})

    def set_label(self, template_id: str, label: str, version: int, *, protected: bool | None = None) -> TemplateLabels:
        """Point `label` (e.g. `production`) at a version (`protected`: only `labels:write` keys move it)."""
        body: dict[str, Any] = {"version": version}
        if protected is not None:
            body["protected"] = protected
        answer = self._http.call("PUT", f"/templates/{template_id}/labels/{label}", body=body)
        return TemplateLabels.model_validate(answer)

    def update(self, template_id: str, **fields: Any) -> TemplatePublic:
        """A new version: the current content with `fields` replaced (`body`, `system`, `defaults`, …)."""
        current = self.get(template_id)
        kept = current.model_dump(mode="json", by_alias=True, exclude_none=True)
        content: dict[str, Any] = {
            name: kept[name]
            for name in ("name", "body", "system", "description", "cacheTtlSeconds", "cacheSystemPrompt")
            if name in kept
        }
        content["defaults"] = kept.get("defaults") or {}
        if current.variables_schema is not None:
            content["variablesSchema"] = current.variables_schema
        else:
            content["variables"] = kept["variables"]
        content.update({camel(k): v for k, v in fields.items() if v is not None})
        headers = {"If-Match": f'"{current.version}"'}
        return TemplatePublic.model_validate(
            self._http.call("PUT", f"/templates/{template_id}", body=content, headers=headers)
        )


class Jobs:
    """`client.jobs`: read, wait for, list, cancel, retry and purge jobs."""

    def __init__(self, transport: Transport, sleep: Callable[[float], None] = time.sleep) -> None:
        self._http = transport
        self._sleep = sleep

    def get(self, job_id: str, *, wait: float = 0) -> Job:
        """The job; with `wait` (≤ 20 s), the server holds the answer until the job ends or the time is up."""
        query = {"wait": f"{wait:g}"} if wait else None
        return Job.model_validate(self._http.call("GET", f"/jobs/{job_id}", query=query, timeout=wait + 30))

    def wait(self, job_id: str, *, timeout: float | None = None) -> Job:
        """Long-poll until the job ends; `JobWaitTimeout` after `timeout` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 20.0 if deadline is None else min(20.0, deadline - time.monotonic())
            job = self.get(job_id, wait=max(0.0, left))
            if job.status in ENDED:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise JobWaitTimeout(job_id, timeout or 0)
            if left <= 0:
                self._sleep(0.2)

    def list(self, *, page_size: int = 50, **filters: Any) -> Iterator[JobSummary]:
        """Every job matching the filters (`status`, `template_id`, `provider`, `priority`, `created_from`, …)."""
        query = {camel(name): value for name, value in filters.items()}
        cursor: str | None = None
        while True:
            page = self._http.call("GET", "/jobs", query={**query, "limit": page_size, "cursor": cursor})
            yield from (JobSummary.model_validate(item) for item in page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def cancel(self, job_id: str) -> Job:
        return Job.model_validate(self._http.call("POST", f"/jobs/{job_id}/cancel"))

    def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again with a fresh attempt budget."""
        return Job.model_validate(self._http.call("POST", f"/jobs/{job_id}/retry"))

    def delete(self, job_id: str) -> None:
        """Purge the job's input and output (its accounting stays)."""
        self._http.call("DELETE", f"/jobs/{job_id}")
