import base64
import json
from typing import Any

import pytest

from promptlab.api.errors import status_of
from promptlab.api.pipeline import MAX_BODY_BYTES, check_request
from promptlab.core import errors
from promptlab.core.errors import STATUS_BY_CODE, PromptLabError
from promptlab.core.validation import validation_fields


def event(body: str | None, content_type: str | None = "application/json", *, b64: bool = False) -> dict[str, object]:
    headers = {"Content-Type": content_type} if content_type else {}
    text = base64.b64encode(body.encode()).decode() if (b64 and body is not None) else body
    return {"httpMethod": "POST", "headers": headers, "body": text, "isBase64Encoded": b64}


def refusal(raw: dict[str, object]) -> tuple[int, str]:
    """(status, code) the pipeline refuses a raw request with."""
    with pytest.raises(PromptLabError) as refused:
        check_request(raw)
    return status_of(refused.value.code), refused.value.code


def test_malformed_json_is_a_400() -> None:
    assert refusal(event("{nope")) == (400, "bad_request")


def test_a_non_json_content_type_is_a_415() -> None:
    assert refusal(event("a=b", "application/x-www-form-urlencoded")) == (415, "unsupported_media_type")


def test_json_variants_and_base64_bodies_pass() -> None:
    check_request(event('{"a": 1}', "application/json; charset=utf-8"))
    check_request(event('{"a": 1}', "application/merge-patch+json"))
    check_request(event('{"a": 1}', None, b64=True))


def test_a_body_over_the_limit_is_a_413() -> None:
    assert refusal(event(json.dumps({"x": "a" * MAX_BODY_BYTES}))) == (413, "payload_too_large")


def test_a_nul_in_a_query_parameter_is_a_422_naming_it() -> None:
    raw: dict[str, object] = {"httpMethod": "GET", "queryStringParameters": {"q": "a\x00b"}}
    assert refusal(raw) == (422, "validation_error")


def test_validation_errors_name_fields_in_camel_case_with_indices() -> None:
    errors: list[dict[str, Any]] = [
        {
            "loc": ("body", "maxTokens"),
            "msg": "Input should be greater than or equal to 1",
            "type": "greater_than_equal",
        },
        {
            "loc": ("body", "variables", 2, "name"),
            "msg": "String should match pattern",
            "type": "string_pattern_mismatch",
        },
        {"loc": ("body", "templateId"), "msg": "Field required", "type": "missing"},
        {"loc": ("body", "input", "str"), "msg": "Input should be a valid string", "type": "string_type"},
        {
            "loc": ("body", "input", "dict[str,any]"),
            "msg": "Input should be a valid dictionary",
            "type": "dict_type",
        },
    ]
    assert validation_fields(errors) == [
        {"field": "maxTokens", "message": "Input should be greater than or equal to 1"},
        {"field": "variables[2].name", "message": "String should match pattern"},
        {"field": "templateId", "message": "is required"},
        {"field": "input", "message": "must be a string or an object of variables"},
    ]


def test_every_design_error_code_has_its_status() -> None:
    expected = {
        "bad_request": 400, "unauthorized": 401, "budget_exceeded": 402, "not_found": 404, "conflict": 409,
        "precondition_failed": 412, "payload_too_large": 413, "unsupported_media_type": 415,
        "validation_error": 422, "rate_limited": 429, "dependency_unavailable": 503,
    }  # fmt: skip
    assert {code: STATUS_BY_CODE[code] for code in expected} == expected


def test_every_error_class_has_a_status_in_the_one_table() -> None:
    # Given every typed error the package can raise
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, PromptLabError)]
    # Then each one's code is in the table (a new error class cannot silently answer 500)
    assert {c.__name__: c.code in STATUS_BY_CODE for c in classes} == {c.__name__: True for c in classes}


def test_every_operation_is_documented_with_examples() -> None:
    from promptlab.api.app import openapi_document
    from promptlab.api.declared import DECLARED
    from promptlab.api.pipeline import PUBLIC_PATHS

    document = openapi_document()
    operations = {(m.upper(), p): op for p, methods in document["paths"].items() for m, op in methods.items()}
    assert set(operations) == {key for key, declared in DECLARED.items() if declared.documented}
    # what the document calls public is what the pipeline lets through without a key
    public = {declared.path for declared in DECLARED.values() if declared.public and "{" not in declared.path}
    assert public <= PUBLIC_PATHS
    for key, operation in operations.items():
        assert operation["summary"] and len(operation["description"]) > 30, key
        if "requestBody" in operation:
            assert operation["requestBody"]["content"]["application/json"].get("example"), key
        errors = {status: answer for status, answer in operation["responses"].items() if int(status) >= 400}
        assert errors, key
        for status, answer in errors.items():
            example = answer["content"]["application/json"]["example"]["error"]
            if key[1].startswith("/v1/"):  # OpenAI's error shape
                assert set(example) == {"message", "type", "param", "code"}, (key, status)
                continue
            assert STATUS_BY_CODE[example["code"]] == int(status), (key, status, example)
    assert operations[("POST", "/generate")]["responses"]["402"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
