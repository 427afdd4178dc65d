"""`Client`: the typed Python way to use the PromptLab API (templates, generation, jobs, usage)."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from promptlab.client.errors import ApiError, PromptLabClientError, error_from_answer
from promptlab.client.experiments import Datasets, Experiments
from promptlab.client.resources import ENDED, Job, Jobs, Templates
from promptlab.client.transport import RetryPolicy, Transport
from promptlab.core.errors import STATUS_BY_CODE
from promptlab.models.usage import UsageReport

BATCH_LIMIT = 100  # items of one POST /generate/batch
DEFAULT_URL = "http://127.0.0.1:3000"
Progress = Callable[[int, int, int], None]  # (ended, total, failed)
_NAMED = frozenset({"template", "input"})

_CAMEL = {
    "max_tokens": "maxTokens",
    "top_p": "topP",
    "response_format": "responseFormat",
    "expires_at": "expiresAt",
}
GENERATE_OPTIONS = frozenset(
    {"provider", "model", "max_tokens", "temperature", "top_p", "stop", "priority", "cache", "metadata"}
    | {"callback", "fallbacks", "messages", "response_format", "expires_at"}
)


def default_url() -> str:
    """`PROMPTLAB_URL`, else the local stack's address."""
    return os.environ.get("PROMPTLAB_URL") or DEFAULT_URL


def default_key() -> str | None:
    """`PROMPTLAB_API_KEY`, else the development key a local stack keeps (`~/.promptlab/dev-api-key`)."""
    key = os.environ.get("PROMPTLAB_API_KEY")
    if key:
        return key
    path = Path(os.environ.get("PROMPTLAB_DATA_DIR", "~/.promptlab")).expanduser() / "dev-api-key"
    return path.read_text().strip() if path.is_file() else None


def generate_body(
    template_id: str, input: str | Mapping[str, Any] | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """A `POST /generate` body: the template, its input, and the options given (snake_case → the API's names)."""
    unknown = set(options) - GENERATE_OPTIONS
    if unknown:
        raise TypeError(f"unknown generate option(s): {', '.join(sorted(unknown))}")
    body: dict[str, Any] = {"templateId": template_id}
    if input is not None:
        body["input"] = input if isinstance(input, str) else dict(input)
    for name, value in options.items():
        if value is not None:
            body[_CAMEL.get(name, name)] = value
    return body


def generate_bodies(items: list[Mapping[str, Any]], resolved: Mapping[str, str]) -> list[dict[str, Any]]:
    """`generate_many`'s requests as `POST /generate` bodies (`resolved`: each template reference's API form)."""
    return [
        generate_body(
            resolved[str(item["template"])], item.get("input"), {k: v for k, v in item.items() if k not in _NAMED}
        )
        for item in items
    ]


class TerminalProgress:
    """A one-line progress bar on stderr (only on a terminal): `[#####-----] 37/100 · 2 failed`."""

    def __init__(self, label: str = "jobs", width: int = 30) -> None:
        self.label, self.width = label, width
        self._lock = threading.Lock()

    def __call__(self, ended: int, total: int, failed: int) -> None:
        if not sys.stderr.isatty():
            return
        filled = self.width * ended // max(total, 1)
        line = f"\r[{'#' * filled}{'-' * (self.width - filled)}] {ended}/{total} {self.label}"
        line += f" · {failed} failed" if failed else ""
        with self._lock:
            sys.stderr.write(line + ("\n" if ended == total else ""))
            sys.stderr.flush()


class Client:
    """The PromptLab API: `Client(url, api_key)`; both default to `PROMPTLAB_URL` / `PROMPTLAB_API_KEY`.

    Every error answer raises a typed `ApiError` subclass (with `code`, `request_id`, `fields`); 429 and 503
    are sent again up to `retry.max_retries` times, after the server's `Retry-After`.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url or default_url()
        self.transport = Transport(self.url, api_key or default_key(), timeout=timeout, retry=retry or RetryPolicy())
        self.templates = Templates(self.transport)
        self.jobs = Jobs(self.transport)
        self.datasets = Datasets(self.transport)
        self.experiments = Experiments(self.transport)

    def generate(
        self,
        template: str,
        input: str | Mapping[str, Any] | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Job:
        """Submit a generation (`template`: an id, `id@label`, `id@3`, or a name) and, with `wait`, its end.

        Options are `POST /generate`'s fields in snake_case: `provider`, `model`, `max_tokens`, `temperature`,
        `top_p`, `stop`, `priority`, `cache`, `metadata`, `callback`, `fallbacks`, `messages`,
        `response_format`, `expires_at`.
        """
        body = generate_body(self.templates.resolve(template), input, options)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        job = Job.model_validate(self.transport.call("POST", "/generate", body=body, headers=headers))
        if wait and job.status not in ENDED:
            job = self.jobs.wait(job.id, timeout=timeout)
        return job

    def generate_many(
        self,
        requests: Iterable[Mapping[str, Any]],
        *,
        wait: bool = True,
        concurrency: int = 8,
        progress: bool | Progress = False,
        timeout: float | None = None,
    ) -> list[Job | ApiError]:
        """Many generations: each request is `generate`'s arguments as a mapping (`template`, `input`, options).

        Jobs go in as `POST /generate/batch` calls of up to 100; with `wait`, up to `concurrency` long polls
        run at once. The result keeps the requests' order: a job, or the `ApiError` that refused that one.
        """
        submitted = self.submit_many(requests)
        report = _progress(progress)
        return self._follow(submitted, wait=wait, concurrency=concurrency, report=report, timeout=timeout)

    def submit_many(self, requests: Iterable[Mapping[str, Any]]) -> list[str | ApiError]:
        """Each request submitted (`POST /generate/batch`, 100 at a time): its job id, or the error refusing it.

        A bad item — no `template`, an unknown template name, an unknown option, a value the API refuses — gets
        its own error in its place; the others go ahead."""
        items = list(requests)
        outcome: list[str | ApiError | None] = [None] * len(items)
        resolved: dict[str, str] = {}
        bodies: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(items):
            try:
                name = str(item["template"]) if "template" in item else None
                if name is None:
                    raise _bad_item("template", "every request names its template")
                if name not in resolved:
                    resolved[name] = self.templates.resolve(name)
                bodies.append((index, generate_bodies([item], resolved)[0]))
            except ApiError as exc:
                outcome[index] = exc
            except TypeError as exc:  # an option generate does not take
                outcome[index] = _bad_item("options", str(exc))
        for start in range(0, len(bodies), BATCH_LIMIT):
            chunk = bodies[start : start + BATCH_LIMIT]
            answer = self.transport.call("POST", "/generate/batch", body={"items": [body for _, body in chunk]})
            for (index, _), entry in zip(chunk, answer["items"], strict=True):
                outcome[index] = _batch_item(entry)
        return [entry for entry in outcome if entry is not None]

    def _follow(
        self, submitted: list[str | ApiError], *, wait: bool, concurrency: int, report: Progress, timeout: float | None
    ) -> list[Job | ApiError]:
        """Each submitted job (its id) read back (with `wait`, once it ended), up to `concurrency` at a time."""
        outcomes, tally = refusals(submitted, report)

        def read(index: int, job_id: str) -> None:
            try:
                outcome: Job | ApiError = self.jobs.wait(job_id, timeout=timeout) if wait else self.jobs.get(job_id)
            except ApiError as exc:
                outcome = exc
            outcomes[index] = outcome
            if wait:
                tally.add(outcome)

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            futures = [pool.submit(read, i, r) for i, r in enumerate(submitted) if isinstance(r, str)]
            for future in futures:
                future.result()
        return [outcomes[i] for i in range(len(submitted))]

    def usage(self, *, group_by: str = "day", start: Any = None, end: Any = None) -> UsageReport:
        """Requests, tokens, cost and savings of this key's tenant (`group_by`: day, provider, model, template)."""
        answer = self.transport.call("GET", "/usage", query={"groupBy": group_by, "from": start, "to": end})
        return UsageReport.model_validate(answer)

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.transport.call("GET", "/health")
        return answer


def _bad_item(field: str, message: str) -> ApiError:
    """The error of an item refused before it was sent, in the API's shape (422 naming the field)."""
    error = {
        "code": "validation_error",
        "message": message,
        "details": {"fields": [{"field": field, "message": message}]},
    }
    return error_from_answer(422, json.dumps({"error": error}).encode(), {})


def _batch_item(entry: Mapping[str, Any]) -> str | ApiError:
    """One answer of `POST /generate/batch`: the id of a job to follow, or the typed error that refused the item."""
    error = entry.get("error")
    if isinstance(error, Mapping):
        code = str(error.get("code"))
        body = json.dumps({"error": dict(error)}).encode()
        return error_from_answer(STATUS_BY_CODE.get(code, 400), body, {})
    return str(entry["jobId"])


def refusals(submitted: list[str | ApiError], report: Progress) -> tuple[dict[int, Job | ApiError], Tally]:
    """The outcomes known at submission (the refused requests, by position) and a tally that counted them."""
    outcomes: dict[int, Job | ApiError] = {i: r for i, r in enumerate(submitted) if isinstance(r, ApiError)}
    tally = Tally(total=len(submitted), report=report)
    for refused in outcomes.values():
        tally.add(refused)
    return outcomes, tally


class Tally:
    """How many of a `generate_many` ended and failed, reported after each (thread-safe)."""

    def __init__(self, *, total: int, report: Progress) -> None:
        self.total, self.report = total, report
        self.ended = self.failed = 0
        self._lock = threading.Lock()

    def add(self, outcome: Job | ApiError) -> None:
        with self._lock:
            self.ended += 1
            self.failed += isinstance(outcome, ApiError) or outcome.status != "completed"
            self.report(self.ended, self.total, self.failed)


def _progress(progress: bool | Progress) -> Progress:
    if callable(progress):
        return progress
    return TerminalProgress() if progress else (lambda *_: None)


__all__ = ["Client", "Job", "Jobs", "Templates", "TerminalProgress", "PromptLabClientError", "default_key"]
