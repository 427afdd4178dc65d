"""LLM providers behind one `Provider` protocol; `get_provider(name)` builds each once."""

from __future__ import annotations

from functools import cache

from promptlab.errors import ValidationFailed
from promptlab.providers.base import Provider

AVAILABLE = ("fake",)


def check_available(name: str) -> None:
    """422 at submit time for a provider this deployment cannot call."""
    if name not in AVAILABLE:
        raise ValidationFailed.single(
            "provider",
            f"provider {name!r} is not available in this deployment; available: {', '.join(AVAILABLE)}",
        )


@cache
def get_provider(name: str) -> Provider:
    """The provider adapter for `name`; SDKs are imported here, only for the provider used."""
    check_available(name)
    from promptlab.providers.fake import FakeProvider

    return FakeProvider()
