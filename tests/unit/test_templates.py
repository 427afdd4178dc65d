import pytest

from promptlab.core.errors import ValidationFailed
from promptlab.templates.rendering import Variable, bind_input, derive_variables, placeholder_names, render


def fields(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {f.field: f.message for f in exc.value.fields}


def test_placeholders_are_found_in_order_with_optional_spaces() -> None:
    assert placeholder_names("Hi {{name}}, about {{ topic }} and {{name}}") == ["name", "topic"]


def test_system_variables_come_before_body_variables() -> None:
    variables = derive_variables(body="Write about {{ topic }}", system="You are {{ persona }}", declared=None)
    assert [v.name for v in variables] == ["persona", "topic"]


def test_render_is_one_pass_and_leaves_other_text_literal() -> None:
    text = render("Say {{ a }} and {b} and {{ not valid }}", {"a": "{{ b }}", "b": "x"})
    assert text == "Say {{ b }} and {b} and {{ not valid }}"


def test_a_placeholder_that_is_not_a_name_is_rejected_on_save() -> None:
    with pytest.raises(ValidationFailed) as exc:
        derive_variables(body="Hello {{ user.name }}", system=None, declared=None)
    assert "user.name" in fields(exc)["body"]


def test_declared_variables_must_be_used() -> None:
    with pytest.raises(ValidationFailed) as exc:
        derive_variables(body="{{ a }}", system=None, declared=[Variable("a"), Variable("ghost")])
    assert "ghost" in fields(exc)["variables[1].name"]


def test_string_input_binds_to_the_only_variable() -> None:
    assert bind_input([Variable("input")], "Explain TypeScript") == {"input": "Explain TypeScript"}


def test_string_input_with_two_variables_names_them() -> None:
    with pytest.raises(ValidationFailed) as exc:
        bind_input([Variable("topic"), Variable("tone")], "hi")
    assert "topic, tone" in fields(exc)["input"]


def test_every_missing_and_unknown_variable_is_named() -> None:
    with pytest.raises(ValidationFailed) as exc:
        bind_input([Variable("topic"), Variable("tone")], {"topc": "x"})
    assert set(fields(exc)) == {"input.topc", "input.topic", "input.tone"}


def test_defaults_fill_missing_optional_variables_and_scalars_become_text() -> None:
    variables = [Variable("topic"), Variable("tone", required=False, default="friendly"), Variable("n")]
    assert bind_input(variables, {"topic": "SQS", "n": 3}) == {"topic": "SQS", "tone": "friendly", "n": "3"}


def test_nested_values_render_as_compact_json() -> None:
    assert bind_input([Variable("data")], {"data": {"b": 1, "a": [True, None]}}) == {"data": '{"a":[true,null],"b":1}'}
