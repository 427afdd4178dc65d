"""A tokenizer-like estimate, for dry runs and the offline fake provider (no provider tokenizer is loaded)."""

from __future__ import annotations

import re

TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
MESSAGE_OVERHEAD = 4  # framing tokens a chat message costs beyond its text


def count_tokens(text: str) -> int:
    """About four characters per token, punctuation separately."""
    return sum(max(1, -(-len(piece) // 4)) for piece in TOKEN.findall(text))


def prompt_tokens(system: str | None, messages: list[str]) -> int:
    """The estimate for a whole request: the system prompt and every message with its framing."""
    return count_tokens(system or "") + sum(count_tokens(m) + MESSAGE_OVERHEAD for m in messages)
