"""JSON-Schema dicts are checked by the jsonschema library: keywords the old hand-written checker skipped now count,
and every problem is still one short line with its path."""

from __future__ import annotations

import pytest

from deepseek_magic.features.structured import StructuredOutputError, retry_message, validate


@pytest.mark.parametrize(
    ("data", "schema", "problem"),
    [
        ({"code": "ab"}, {"properties": {"code": {"pattern": "^[0-9]+$"}}}, "code: 'ab' does not match '^[0-9]+$'"),
        ([1, 1], {"type": "array", "uniqueItems": True}, "(root): [1, 1] has non-unique elements"),
        ({"n": 7}, {"properties": {"n": {"multipleOf": 5}}}, "n: 7 is not a multiple of 5"),
        ({"a": 1}, {"not": {"required": ["a"]}}, "(root): {'a': 1} should not be valid under {'required': ['a']}"),
    ],
)
def test_keywords_beyond_the_old_subset_are_enforced(data: object, schema: dict[str, object], problem: str) -> None:
    with pytest.raises(StructuredOutputError) as caught:
        validate(data, schema)
    assert caught.value.problems == [problem]
    assert "\n" not in str(caught.value)
    assert problem in retry_message(caught.value)["content"], "the one re-ask names the problem"


def test_all_problems_are_found_with_their_paths() -> None:
    schema = {"type": "object", "required": ["a", "b"], "properties": {"c": {"type": "integer"}}}
    with pytest.raises(StructuredOutputError) as caught:
        validate({"c": "x"}, schema)
    assert sorted(caught.value.problems) == sorted(
        ["a: required field is missing", "b: required field is missing", "c: expected integer, got string"]
    )


def test_an_invalid_schema_is_one_line_not_a_crash() -> None:
    with pytest.raises(StructuredOutputError) as caught:
        validate(1, {"type": "no-such-type"})
    assert "the schema cannot be checked" in str(caught.value) and "\n" not in str(caught.value)
