"""A conversation's turns as a job stores them, and the rules every door checks them by.

Stored form (the job's `messages`): `{"role", "content"}`, plus `attachments` (`[{mediaType, data|url}]`) on
a user turn, `toolCalls` (`[{id, name, arguments}]`) on an assistant turn, `toolCallId` on a `tool` turn, and
`literal` on turns sent as written (no placeholders filled). `system` turns (an OpenAI-style chat's) join the
system prompt.
"""

from __future__ import annotations

from collections.abc import Callable

from promptlab.core.errors import ValidationFailed
from promptlab.core.json_types import JsonObject
from promptlab.models.generation import ChatMessage, GenerateRequest
from promptlab.providers.registry import attachment_refusal
from promptlab.templates.rendering import check_placeholders

# Who may speak after whom (system turns aside): a tool turn answers the assistant's calls.
_NEXT = {"user": {"assistant"}, "assistant": {"user", "tool"}, "tool": {"tool", "assistant"}}


def stored_turn(message: ChatMessage) -> JsonObject:
    """A request's turn in the stored form."""
    turn: JsonObject = {"role": message.role, "content": message.content}
    if message.attachments:
        turn["attachments"] = [a.model_dump(by_alias=True, exclude_none=True) for a in message.attachments]
    if message.tool_calls:
        turn["toolCalls"] = [c.model_dump() for c in message.tool_calls]
    if message.tool_call_id is not None:
        turn["toolCallId"] = message.tool_call_id
    return turn


def check_sequence(turns: list[JsonObject], where: Callable[[int], str]) -> None:
    """422 unless the turns start with the user, answer each tool call with its own `tool` turn (by id) and
    end with the user or a tool's result. `where(i)` names turn `i` as the request's field."""
    spoken = [(i, t) for i, t in enumerate(turns) if t["role"] != "system"]
    if not spoken:
        return
    first, turn = spoken[0]
    if turn["role"] != "user":
        raise ValidationFailed.single(f"{where(first)}.role", "the first turn must be the user's")
    calls: set[str] = set()
    previous = "user"
    for index, turn in spoken[1:]:
        role = turn["role"]
        if role not in _NEXT[previous] or (role == "tool" and not calls):
            raise ValidationFailed.single(f"{where(index)}.role", f"a {role!r} turn cannot follow a {previous!r} turn")
        if role == "assistant":
            calls = {str(c["id"]) for c in turn.get("toolCalls") or ()}
        elif role == "tool" and turn.get("toolCallId") not in calls:
            raise ValidationFailed.single(
                f"{where(index)}.toolCallId", "answers no tool call of the assistant turn before it"
            )
        previous = role
    last, turn = spoken[-1]
    if turn["role"] not in {"user", "tool"}:
        raise ValidationFailed.single(f"{where(last)}.role", "the last turn must be the user's or a tool's result")


def conversation(request: GenerateRequest) -> list[JsonObject] | None:
    """`POST /generate`'s turns, checked (placeholders well formed, the sequence above)."""
    if not request.messages:
        return None
    turns = [stored_turn(m) for m in request.messages]
    for index, turn in enumerate(turns):
        problems = check_placeholders(f"messages[{index}].content", turn["content"])
        if problems:
            raise ValidationFailed("a message has a malformed placeholder", problems)
    check_sequence(turns, lambda i: f"messages[{i}]")
    return turns


def check_attachments(provider: str, turns: list[JsonObject] | None, where: Callable[[int], str]) -> None:
    """422 naming the attachment a provider cannot take (a PDF by URL, an https image on Bedrock, …)."""
    for index, turn in enumerate(turns or ()):
        for n, item in enumerate(turn.get("attachments") or ()):
            refusal = attachment_refusal(provider, item["mediaType"], item.get("url"))
            if refusal is not None:
                raise ValidationFailed.single(f"{where(index)}.attachments[{n}]", refusal)
