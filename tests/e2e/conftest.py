"""The end-to-end tests' stack: `promptlab local` as a user starts it, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.local_stack import running_stack


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a stack of this module's own (no other module's requests count against its limits)."""
    with running_stack(tmp_path_factory.mktemp("stack")) as base:
        yield base
