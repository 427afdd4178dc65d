"""What an API key may do: its scopes. Each route names the one it needs where it is declared.

A key made before scopes existed (its `scopes` column NULL), and a key made without `--scope`, holds every
scope: it keeps full access within its tenant. `admin` holds every other scope too.
"""

from __future__ import annotations

from promptlab.core.errors import Forbidden

SCOPES = (
    "read",  # read templates, jobs, datasets, experiments, usage; render a template
    "generate",  # POST /generate, /generate/batch, /v1/chat/completions
    "templates:write",  # create, change, archive and restore templates; move a label that is not protected
    "labels:write",  # move any label (protected ones too), promote an experiment
    "jobs:write",  # cancel, retry and purge jobs; redrive dead letters
    "datasets:write",  # create, replace and delete datasets
    "experiments:run",  # start and cancel experiments
    "admin",  # manage the tenant's keys, read its audit log; and everything above
)
ALL = frozenset(SCOPES)


def check_scopes(scopes: list[str]) -> list[str]:
    """The scopes as given, each a known one (`ValueError` naming the unknown)."""
    unknown = [s for s in scopes if s not in ALL]
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return sorted(set(scopes), key=SCOPES.index)


def holds(scopes: frozenset[str] | None, needed: str) -> bool:
    """Whether a key with these scopes (None: every scope) may call a route that needs `needed` (one scope,
    or several joined by `|`: any of them)."""
    return scopes is None or "admin" in scopes or any(one in scopes for one in needed.split("|"))


def require(scopes: frozenset[str] | None, needed: str) -> None:
    """403 naming the scope a key lacks."""
    if not holds(scopes, needed):
        named = " or ".join(repr(one) for one in needed.split("|"))
        raise Forbidden(
            f"this API key lacks the {named} scope; it holds: {', '.join(sorted(scopes or ())) or 'none'}",
            details={"requiredScope": needed},
        )
