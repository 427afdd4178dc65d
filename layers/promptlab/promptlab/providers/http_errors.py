"""Turning an SDK's HTTP failure into a classified `ProviderError` (shared by the SDK providers)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from promptlab.providers.base import ProviderError, error_for_status

_RATE_LIMIT_PREFIXES = ("anthropic-ratelimit-", "x-ratelimit-")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms`, or `retry-after` in seconds or as an HTTP date; None when absent or unreadable."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The provider's rate-limit headers, kept so the queue (and people) can see them."""
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(_RATE_LIMIT_PREFIXES)}


def status_error(
    *, status: int, message: str, headers: Mapping[str, str], provider: str, model: str, known: tuple[str, ...]
) -> ProviderError:
    """The classified error for a provider's HTTP error answer."""
    if status == 404:
        listing = ", ".join(known) or "none configured"
        message = f"model {model!r} was not found at {provider} ({message}); configured models: {listing}"
    error = error_for_status(status, message, retry_after=retry_after_seconds(headers))
    error.extra = rate_limit_headers(headers)
    return error


def timeout_error(seconds: float) -> ProviderError:
    """No answer in time: worth another attempt."""
    return ProviderError(code="timeout", message=f"no answer within {seconds:g} s", retryable=True)


@dataclass(frozen=True)
class SdkErrors:
    """The exception classes one SDK raises, named by the adapter that uses it (no SDK's names are assumed).

    `status` must carry the HTTP answer: `status_code`, `message` and `response.headers`.
    """

    timeout: type[Exception]
    connection: type[Exception]
    status: type[Exception]
    unreadable: type[Exception]


@contextmanager
def classified_errors(errors: SdkErrors, *, provider: str, model: str, timeout: float) -> Iterator[None]:
    """Run an SDK call, turning the SDK's failures (`errors`) into `ProviderError`."""
    from promptlab.providers.registry import known_models

    try:
        yield
    except errors.timeout as exc:
        raise timeout_error(timeout) from exc
    except errors.connection as exc:
        raise ProviderError(code="connection_error", message=str(exc), retryable=True) from exc
    except errors.status as exc:
        answer: Any = exc
        raise status_error(
            status=answer.status_code, message=answer.message, headers=dict(answer.response.headers),
            provider=provider, model=model, known=known_models(provider),
        ) from exc  # fmt: skip
    except (errors.unreadable, ValueError) as exc:
        raise ProviderError(code="bad_response", message=f"unreadable answer: {exc}", retryable=True) from exc
