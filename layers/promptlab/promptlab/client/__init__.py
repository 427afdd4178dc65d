"""The Python client of the PromptLab API.

    from promptlab.client import Client

    client = Client("http://127.0.0.1:3000", api_key="pl_…")
    job = client.generate("blog-post", "Explain TypeScript")          # waits for the job to end
    print(job.output, job.estimated_cost_usd)

    jobs = client.generate_many([{"template": "blog-post", "input": t} for t in topics], progress=True)

Errors are typed (`ValidationError` with `.fields`, `BudgetExceeded`, `RateLimited` with `.retry_after`, …);
429 and 503 answers are retried after their `Retry-After`. `AsyncClient` is the same for asyncio.
"""

from promptlab.client.async_client import AsyncClient
from promptlab.client.errors import (
    ApiError,
    ApiUnreachable,
    BadRequest,
    BudgetExceeded,
    Conflict,
    FieldError,
    JobWaitTimeout,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PromptLabClientError,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
)
from promptlab.client.sync_client import Client, Job, TerminalProgress, default_key, default_url
from promptlab.client.transport import RetryPolicy
from promptlab.client.webhooks import InvalidWebhook, verify_webhook

__all__ = [
    "ApiError",
    "ApiUnreachable",
    "AsyncClient",
    "BadRequest",
    "BudgetExceeded",
    "Client",
    "Conflict",
    "FieldError",
    "InvalidWebhook",
    "Job",
    "JobWaitTimeout",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PromptLabClientError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "TerminalProgress",
    "Unauthorized",
    "ValidationError",
    "default_key",
    "default_url",
    "verify_webhook",
]
