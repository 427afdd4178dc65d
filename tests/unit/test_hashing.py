from decimal import Decimal

from promptlab.core.hashing import canonical_json, input_hash

BASE = {
    "template_id": "tpl_1",
    "version": 1,
    "provider": "fake",
    "model": "fake-1",
    "params": {"maxTokens": 100, "temperature": Decimal("0.70")},
    "bound_input": {"a": "1", "b": "2"},
}


def test_key_order_does_not_change_the_hash() -> None:
    reordered = {
        **BASE,
        "bound_input": {"b": "2", "a": "1"},
        "params": {"temperature": Decimal("0.7"), "maxTokens": 100},
    }
    assert input_hash(**BASE) == input_hash(**reordered)  # type: ignore[arg-type]


def test_a_new_version_or_model_changes_the_hash() -> None:
    assert input_hash(**{**BASE, "version": 2}) != input_hash(**BASE)  # type: ignore[arg-type]
    assert input_hash(**{**BASE, "model": "fake-2"}) != input_hash(**BASE)  # type: ignore[arg-type]


def test_canonical_json_is_compact_sorted_utf8_with_decimal_strings() -> None:
    assert canonical_json({"b": Decimal("1.50"), "a": "é"}) == '{"a":"é","b":"1.5"}'
