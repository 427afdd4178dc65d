"""What the CLI says when a command fails: one line — what happened and what to do — never a traceback.

`--debug` shows the traceback instead. Exit codes: 2 for usage errors (argparse's own, and `UsageError`),
1 for everything else.
"""

from __future__ import annotations

import errno
import socket
import urllib.error

from promptlab.client.errors import ApiError, ApiUnreachable, JobWaitTimeout
from promptlab.core.errors import PromptLabError


class UsageError(Exception):
    """The command was given something it cannot use (exit code 2)."""


def _fields(details: object) -> str:
    fields = details.get("fields", []) if isinstance(details, dict) else []
    return "".join(f"; {f.get('field')}: {f.get('message')}" for f in fields if isinstance(f, dict))


def _data_store(exc: BaseException) -> str | None:
    """`DATABASE_URL` or `REDIS_URL` when the failure is that data store not answering."""
    if isinstance(exc, PromptLabError):
        dependency = exc.details.get("dependency")
        return {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}.get(str(dependency))
    module, name = type(exc).__module__, type(exc).__name__
    if module.startswith("psycopg") and name == "OperationalError":
        return "DATABASE_URL"
    if module.startswith("redis") and name in {"ConnectionError", "TimeoutError"}:
        return "REDIS_URL"
    return None


def explain(exc: BaseException, *, url: str | None = None, port: int | None = None) -> str:
    """One line for a failure of any kind."""
    store = _data_store(exc)
    if store:
        cause = exc.__cause__ or exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        return f"{store} does not answer ({first}) — start the stack with ./dev up, or check {store}"
    if isinstance(exc, ApiError):
        request = f" (request {exc.request_id})" if exc.request_id and exc.status >= 500 else ""
        return f"the API answered {exc}{_fields(exc.details)}{request}"
    if isinstance(exc, ApiUnreachable):
        return f"nothing answers at {exc.url} ({exc.reason}) — start the stack with ./dev up, or set PROMPTLAB_URL"
    if isinstance(exc, JobWaitTimeout):
        return f"{exc} — read it later with GET /jobs/{exc.job_id}"
    if isinstance(exc, PromptLabError):
        return f"{exc.code}: {exc.message}{_fields(exc.details)}"
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        where = url or "the API"
        return f"nothing answers at {where} ({exc.reason}) — start the stack with ./dev up, or set PROMPTLAB_URL"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        taken = f"port {port}" if port else "the port"
        return f"{taken} is taken — is another stack running? stop it, or choose another with --port"
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"no answer from {url or 'the server'} in time — is it overloaded? try again"
    if isinstance(exc, FileNotFoundError):
        if exc.filename:
            return f"{exc.filename}: no such file — check the path (run from the project folder?)"
        return str(exc)
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}"
