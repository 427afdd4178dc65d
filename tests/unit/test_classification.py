import pytest

from promptlab.providers.base import error_for_status


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504, 529])
def test_transient_statuses_are_retryable(status: int) -> None:
    assert error_for_status(status, "x").retryable


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "invalid_request"), (401, "authentication_failed"), (403, "permission_denied"),
     (404, "model_not_found"), (413, "request_too_large"), (422, "invalid_request")],
)  # fmt: skip
def test_other_client_errors_are_permanent(status: int, code: str) -> None:
    error = error_for_status(status, "x")
    assert not error.retryable and error.code == code


def test_retry_after_reads_seconds_milliseconds_and_http_dates() -> None:
    import email.utils
    import time

    from promptlab.providers.http_errors import rate_limit_headers, retry_after_seconds

    assert retry_after_seconds({"Retry-After": "12"}) == 12
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after_seconds({"Retry-After": later}) or 0) <= 31
    assert retry_after_seconds({"Retry-After": "soon"}) is None and retry_after_seconds({}) is None
    headers = {"anthropic-ratelimit-tokens-remaining": "10", "X-RateLimit-Reset-Requests": "1s", "other": "x"}
    assert rate_limit_headers(headers) == {
        "anthropic-ratelimit-tokens-remaining": "10",
        "x-ratelimit-reset-requests": "1s",
    }
