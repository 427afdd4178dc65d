"""Property-based tests (hypothesis) for rendering and hashing."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from promptlab.core.hashing import canonical_json, input_hash
from promptlab.templates.rendering import derive_variables, render

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
# Literal text that cannot itself form a placeholder, but may hold every other character, braces included.
literals = st.text(max_size=40).filter(lambda t: "{{" not in t and "}}" not in t and not t.endswith("{"))
values = st.text(max_size=60)  # anything a user sends, placeholder syntax and template-engine syntax included


@settings(max_examples=300)
@given(data=st.data())
def test_rendering_replaces_each_placeholder_once_and_keeps_everything_else(data: st.DataObject) -> None:
    pieces = data.draw(st.lists(st.tuples(literals, names), max_size=6))
    tail = data.draw(literals)
    bound = {name: data.draw(values) for _, name in pieces}
    spaces = data.draw(st.sampled_from(["", " ", "  "]))
    body = "".join(f"{text}{{{{{spaces}{name}{spaces}}}}}" for text, name in pieces) + tail
    expected = "".join(text + bound[name] for text, name in pieces) + tail
    assert render(body, bound) == expected  # values are inserted verbatim and never rendered again
    assert {v.name for v in derive_variables(body=body, system=None, declared=None)} == {n for _, n in pieces}


@given(text=literals, attempt=st.sampled_from(["{% import os %}", "${7*7}", "{{ 7*7 }}", "{{__class__}}", "#{x}"]))
def test_no_template_syntax_executes_or_reads_anything(text: str, attempt: str) -> None:
    body = f"{text}{attempt}"
    rendered = render(body, {})
    assert rendered == body  # not a variable of ours: left exactly as written, nothing evaluated


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    return value


hash_inputs = st.fixed_dictionaries(
    {
        "template_id": st.from_regex(r"tpl_[0-9A-Z]{26}", fullmatch=True),
        "version": st.integers(min_value=1, max_value=10_000),
        "provider": st.sampled_from(["anthropic", "openai", "fake"]),
        "model": st.text(min_size=1, max_size=20),
        "params": st.fixed_dictionaries(
            {"maxTokens": st.integers(min_value=1, max_value=64_000)},
            optional={"temperature": st.decimals(min_value=0, max_value=2, places=2)},
        ),
        "bound_input": st.dictionaries(names, values, max_size=6),
    }
)


@settings(max_examples=300)
@given(document=hash_inputs, seed=st.integers())
def test_the_hash_ignores_key_order_and_changes_with_any_value(document: dict[str, Any], seed: int) -> None:
    rng = random.Random(seed)
    reordered = {k: shuffled(v, rng) for k, v in document.items()}
    assert input_hash(**document) == input_hash(**reordered)
    assert input_hash(**{**document, "version": document["version"] + 1}) != input_hash(**document)
    for name in document["bound_input"]:
        changed = {**document["bound_input"], name: document["bound_input"][name] + "."}
        assert input_hash(**{**document, "bound_input": changed}) != input_hash(**document)


@given(value=st.decimals(min_value=-1000, max_value=1000, places=4))
def test_equal_decimals_hash_alike(value: Decimal) -> None:
    # 0.5 and 0.50 are the same temperature, so they must be the same cache key.
    assert canonical_json({"t": value}) == canonical_json({"t": value.quantize(Decimal("0.000001"))})
