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
