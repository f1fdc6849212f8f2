"""JSON mode: instruction, parsing replies as models write them, validation, retry text, DataFrames."""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, TypeAdapter

from deepseek_magic.core.errors import ConfigError, ReplyError
from deepseek_magic.features.structured import (
    JSON_INSTRUCTION,
    SchemaLookupError,
    StructuredOutputError,
    json_instruction,
    mentions_json,
    parse_json_reply,
    retry_message,
    schema_from_namespace,
    to_python,
    validate,
)


class Person(BaseModel):
    name: str
    age: int


class Address(BaseModel):
    city: str
    zip_code: str | None = None


class Customer(BaseModel):
    name: str
    tier: Literal["gold", "silver"]
    address: Address


class Report(BaseModel):
    title: str
    rows: list[Person]


# --- prompt side ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "user", "content": "List three cities as JSON."}], True),
        ([{"role": "system", "content": "Answer in json"}, {"role": "user", "content": "cities"}], True),
        ([{"role": "user", "content": [{"type": "text", "text": "give me Json please"}]}], True),
        ([{"role": "user", "content": "List three cities."}], False),
        ([{"role": "assistant", "content": "here is json"}, {"role": "user", "content": "again"}], False),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "json.png"}}]}], False),
        ([{"role": "user", "content": None}], False),
        ([], False),
    ],
)
def test_mentions_json(messages: list[dict[str, Any]], expected: bool) -> None:
    assert mentions_json(messages) is expected


def test_instruction_without_schema_mentions_json() -> None:
    assert json_instruction() == JSON_INSTRUCTION
    assert mentions_json([{"role": "system", "content": json_instruction()}])


def embedded_schema(instruction: str) -> Any:
    start = instruction.index("{")
    return json.JSONDecoder().raw_decode(instruction, start)[0]


def test_instruction_with_a_model_embeds_its_compact_schema_without_field_titles() -> None:
    text = json_instruction(Person)
    assert text.startswith(JSON_INSTRUCTION)
    assert '{"properties":{"name":{"type":"string"},"age":{"type":"integer"}}' in text
    assert embedded_schema(text) == {
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "title": "Person",
        "type": "object",
    }
    assert '{"items": [...]}' in text


def test_instruction_keeps_nested_definitions_and_a_property_named_title() -> None:
    schema = embedded_schema(json_instruction(Customer))
    assert schema["$defs"]["Address"]["properties"]["city"] == {"type": "string"}
    assert "title" not in schema["$defs"]["Address"]
    document = {"type": "object", "properties": {"title": {"type": "string", "title": "Title"}}}
    assert embedded_schema(json_instruction(document)) == {
        "type": "object",
        "properties": {"title": {"type": "string"}},
    }


def test_instruction_for_a_list_type_asks_for_the_items_wrapper() -> None:
    text = json_instruction(list[Person])
    assert 'under the key "items"' in text
    assert embedded_schema(text)["type"] == "array"


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('  \n{"a": [1, 2]}\n\n', {"a": [1, 2]}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```JSON\n{"a": 1}\n```', {"a": 1}),
        ('```\n[{"a": 1}]\n```', [{"a": 1}]),
        ('Here is the data:\n\n```json\n{"cities": ["Oslo"]}\n```\n\nLet me know!', {"cities": ["Oslo"]}),
        ('Sure! {"ok": true} Hope that helps.', {"ok": True}),
        ('The answer: {"ok": true}. Note {braces} later.', {"ok": True}),
        ('{"code": "```python\\nprint(1)\\n```"}', {"code": "```python\nprint(1)\n```"}),
        ('```python\nx = 1\n```\n```json\n{"x": 1}\n```', {"x": 1}),
        ("[1, 2, 3]", [1, 2, 3]),
        ("\ufeff{}", {}),
    ],
)
def test_parse_json_reply(reply: str, expected: Any) -> None:
    assert parse_json_reply(reply) == expected


@pytest.mark.parametrize("reply", ["", "   ", "\n\n\n"])
def test_a_blank_reply_is_its_own_error(reply: str) -> None:
    with pytest.raises(StructuredOutputError) as caught:
        parse_json_reply(reply)
    assert str(caught.value) == "the reply was blank"
    assert caught.value.raw == reply


def test_json_cut_off_by_max_tokens_says_so() -> None:
    reply = '{"rows": [{"name": "Ada", "age": 36}, {"name": "Alan", "ag'
    with pytest.raises(StructuredOutputError) as caught:
        parse_json_reply(reply)
    message = str(caught.value)
    assert message.startswith("the reply is not valid JSON: it breaks off before the JSON is complete")
    assert caught.value.truncated is True
    assert caught.value.raw == reply
    fenced = '```json\n{"rows": [1, 2, 3'
    with pytest.raises(StructuredOutputError, match="breaks off"):
        parse_json_reply(fenced)


def test_invalid_json_gives_the_reason_and_keeps_the_raw_text() -> None:
    reply = "{'single': 'quotes'}"
    with pytest.raises(StructuredOutputError) as caught:
        parse_json_reply(reply)
    assert str(caught.value) == (
        "the reply is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"
    )
    assert caught.value.raw == reply
    assert caught.value.truncated is False
    with pytest.raises(StructuredOutputError, match="contains no JSON object or array"):
        parse_json_reply("I cannot help with that.")


def test_structured_output_error_is_a_one_line_reply_error_and_value_error() -> None:
    error = StructuredOutputError("bad\nthing   here", raw="x", problems=["a: b"])
    assert isinstance(error, ReplyError) and isinstance(error, ValueError)
    assert str(error) == "bad thing here"
    assert error._render_traceback_() == ["StructuredOutputError: bad thing here"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parsing_any_text_gives_data_or_a_structured_output_error(text: str) -> None:
    try:
        parse_json_reply(text)
    except StructuredOutputError as exc:
        assert exc.raw == text
        assert "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
        max_leaves=30,
    ),
    st.sampled_from(["{}", "```json\n{}\n```", "Here you go:\n{}\nThanks.", "```\n{}\n```"]),
)
def test_json_survives_every_wrapping(value: Any, wrapping: str) -> None:
    document = {"value": value}
    assert parse_json_reply(wrapping.replace("{}", json.dumps(document), 1)) == document


# --- validation: pydantic -------------------------------------------------------------


def test_a_model_validates_one_record_with_lax_coercion() -> None:
    assert validate({"name": "Ada", "age": "36"}, Person) == Person(name="Ada", age=36)


def test_a_model_validates_a_list_of_records() -> None:
    assert validate([{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}], Person) == [
        Person(name="Ada", age=36),
        Person(name="Alan", age=41),
    ]


def test_a_model_validates_records_wrapped_under_one_key() -> None:
    data = {"people": [{"name": "Ada", "age": 36}]}
    assert validate(data, Person) == [Person(name="Ada", age=36)]


def test_a_dict_meant_as_one_record_is_not_unwrapped() -> None:
    report = validate({"title": "t", "rows": [{"name": "Ada", "age": 1}]}, Report)
    assert isinstance(report, Report) and report.rows == [Person(name="Ada", age=1)]
    with pytest.raises(StructuredOutputError) as caught:
        validate({"rows": [{"name": "Ada", "age": 1}]}, Report)  # "rows" is Report's own field
    assert caught.value.problems == ["title: Field required"]


def test_model_failures_name_each_path_and_keep_the_data() -> None:
    data = {"people": [{"name": "Ada"}, {"name": "Alan", "age": "old"}]}
    with pytest.raises(StructuredOutputError) as caught:
        validate(data, Person)
    error = caught.value
    assert error.problems == [
        "people[0].age: Field required",
        "people[1].age: Input should be a valid integer, unable to parse string as an integer",
    ]
    assert str(error) == "the reply does not match the schema: " + "; ".join(error.problems)
    assert json.loads(error.raw or "") == data["people"]


def test_many_problems_are_summarised_in_one_line() -> None:
    records = [{"name": i} for i in range(5)]
    with pytest.raises(StructuredOutputError) as caught:
        validate(records, Person)
    error = caught.value
    assert len(error.problems) == 10
    assert str(error).endswith("(and 7 more)")
    assert "\n" not in str(error)


def test_nested_model_errors_use_dotted_paths() -> None:
    with pytest.raises(StructuredOutputError) as caught:
        validate({"name": "Ada", "tier": "bronze", "address": {}}, Customer)
    assert caught.value.problems == ["tier: Input should be 'gold' or 'silver'", "address.city: Field required"]


def test_a_type_adapter_type_validates_and_unwraps_a_list() -> None:
    assert validate([{"name": "Ada", "age": 1}], list[Person]) == [Person(name="Ada", age=1)]
    assert validate({"items": [{"name": "Ada", "age": 1}]}, list[Person]) == [Person(name="Ada", age=1)]
    with pytest.raises(StructuredOutputError) as caught:
        validate({"items": [{"name": "Ada"}]}, list[Person])
    assert caught.value.problems == ["items[0].age: Field required"]
    assert validate({"a": "1"}, dict[str, int]) == {"a": 1}


# --- validation: JSON-schema dicts ------------------------------------------------------

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": ["string", "null"]},
        "role": {"enum": ["admin", "user"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        "score": {"type": "number", "exclusiveMinimum": 0},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_a_dict_schema_accepts_valid_data_unchanged() -> None:
    data = {"name": "Ada", "age": 36, "email": None, "role": "admin", "tags": ["x"], "score": 0.5}
    assert validate(data, PERSON_SCHEMA) is data
    assert validate({"name": "Ada", "age": 36.0}, PERSON_SCHEMA) == {"name": "Ada", "age": 36.0}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"name": "Ada"}, "age: required field is missing"),
        ({"name": "Ada", "age": "36"}, "age: expected integer, got string"),
        ({"name": "Ada", "age": True}, "age: expected integer, got boolean"),
        ({"name": "Ada", "age": 1.5}, "age: expected integer, got number"),
        ({"name": "Ada", "age": -1}, "age: -1 is less than 0"),
        ({"name": "Ada", "age": 200}, "age: 200 is greater than 150"),
        ({"name": "", "age": 1}, "name: has 0 characters, fewer than 1"),
        ({"name": "A" * 11, "age": 1}, "name: has 11 characters, more than 10"),
        ({"name": "Ada", "age": 1, "email": 5}, "email: expected string or null, got integer"),
        ({"name": "Ada", "age": 1, "role": "root"}, 'role: "root" is not one of ["admin", "user"]'),
        ({"name": "Ada", "age": 1, "tags": []}, "tags: has 0 items, fewer than 1"),
        ({"name": "Ada", "age": 1, "tags": ["a", "b", "c", "d"]}, "tags: has 4 items, more than 3"),
        ({"name": "Ada", "age": 1, "tags": ["a", 2]}, "tags[1]: expected string, got integer"),
        ({"name": "Ada", "age": 1, "score": 0}, "score: 0 is not greater than 0"),
        ({"name": "Ada", "age": 1, "nickname": "A"}, "nickname: unexpected field (additionalProperties is false)"),
        ([], "(root): expected object, got array"),
    ],
)
def test_a_dict_schema_reports_each_violation(data: Any, problem: str) -> None:
    with pytest.raises(StructuredOutputError) as caught:
        validate(data, PERSON_SCHEMA)
    assert caught.value.problems == [problem]


def test_enum_does_not_confuse_true_with_one() -> None:
    with pytest.raises(StructuredOutputError):
        validate(True, {"enum": [1, 2]})
    assert validate(1.0, {"enum": [1, 2]}) == 1.0


def test_a_pydantic_generated_schema_dict_with_refs_and_optionals() -> None:
    schema = Customer.model_json_schema()
    good = {"name": "Ada", "tier": "gold", "address": {"city": "Oslo", "zip_code": None}}
    assert validate(good, schema) == good
    with pytest.raises(StructuredOutputError) as caught:
        validate({"name": "Ada", "tier": "gold", "address": {"city": 1, "zip_code": 7}}, schema)
    assert caught.value.problems == [
        "address.city: expected string, got integer",
        "address.zip_code: matches none of the allowed forms",
    ]


def test_an_array_schema_accepts_the_items_wrapper_and_returns_the_list() -> None:
    schema = {"type": "array", "items": {"type": "object", "required": ["id"]}, "maxItems": 2}
    assert validate({"items": [{"id": 1}]}, schema) == [{"id": 1}]
    with pytest.raises(StructuredOutputError) as caught:
        validate({"items": [{"id": 1}, {}]}, schema)
    assert caught.value.problems == ["items[1].id: required field is missing"]


def test_an_unresolvable_ref_is_reported_not_raised() -> None:
    with pytest.raises(StructuredOutputError, match=r"\$ref #/\$defs/Nope cannot be resolved"):
        validate({}, {"$ref": "#/$defs/Nope"})


# --- retry ------------------------------------------------------------------------------


def test_retry_message_for_invalid_json() -> None:
    with pytest.raises(StructuredOutputError) as caught:
        parse_json_reply("{'a': 1}")
    message = retry_message(caught.value)
    assert message["role"] == "user"
    assert message["content"] == (
        "Your previous reply could not be used: the reply is not valid JSON: "
        "Expecting property name enclosed in double quotes at line 1 column 2.\n"
        "Reply again with only the corrected JSON object: no prose, no code fences."
    )


def test_retry_message_lists_schema_problems() -> None:
    with pytest.raises(StructuredOutputError) as caught:
        validate({"people": [{"name": "Ada"}]}, Person)
    content = retry_message(caught.value)["content"]
    assert content.splitlines() == [
        "Your previous JSON reply did not match the required schema:",
        "- people[0].age: Field required",
        "Reply again with only the corrected JSON object: no prose, no code fences.",
    ]
    assert mentions_json([retry_message(caught.value)])


def test_retry_message_after_truncation_asks_for_a_shorter_reply() -> None:
    with pytest.raises(StructuredOutputError) as caught:
        parse_json_reply('{"a": [1, 2, 3')
    assert "Keep the JSON short enough to be complete." in retry_message(caught.value)["content"]


# --- to_python --------------------------------------------------------------------------


def test_records_become_a_dataframe() -> None:
    frame = to_python([{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["name", "age"]
    assert frame["age"].tolist() == [36, 41]
    assert str(frame["age"].dtype) == "int64"


def test_a_dict_with_one_list_of_records_becomes_a_dataframe() -> None:
    frame = to_python({"cities": [{"city": "Oslo", "temp": 3.5}, {"city": "Lima", "temp": 18.0}]})
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("records") == [{"city": "Oslo", "temp": 3.5}, {"city": "Lima", "temp": 18.0}]


def test_validated_models_become_a_dataframe() -> None:
    frame = to_python(validate({"people": [{"name": "Ada", "age": "36"}]}, Person))
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("records") == [{"name": "Ada", "age": 36}]


@pytest.mark.parametrize(
    "data",
    [
        {"a": 1},
        {"a": [1, 2]},
        {"a": [{"x": 1}], "b": 2},
        [],
        [1, 2],
        [{"x": 1}, 2],
        "text",
        None,
        Person(name="Ada", age=1),
    ],
)
def test_other_data_is_returned_unchanged(data: Any) -> None:
    assert to_python(data) is data


def test_without_pandas_records_stay_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes ``import pandas`` raise ImportError
    records = [{"a": 1}]
    assert to_python(records) is records


# --- schema lookup ----------------------------------------------------------------------


class Holder:
    model = Person


def test_schema_lookup_returns_usable_schemas() -> None:
    namespace: dict[str, Any] = {
        "Person": Person,
        "schema": PERSON_SCHEMA,
        "People": list[Person],
        "holder": Holder,
        "Scores": dict[str, int],
    }
    assert schema_from_namespace("Person", namespace) is Person
    assert schema_from_namespace(" schema ", namespace) is PERSON_SCHEMA
    assert schema_from_namespace("People", namespace) == list[Person]
    assert schema_from_namespace("holder.model", namespace) is Person
    assert schema_from_namespace("Scores", namespace) == dict[str, int]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Missing", None, "--schema Missing: no variable named 'Missing' in the notebook"),
        ("p", Person(name="Ada", age=1), "--schema p is a Person instance; pass the class Person"),
        ("d", {"name": "Ada"}, "--schema d is a dict but not a JSON schema (no type or properties)"),
        ("f", len, "--schema f is a builtin_function_or_method; expected a pydantic model class"),
        ("n", 3, "--schema n is a int; expected"),
        ("not a name", None, "--schema expects a variable name, got 'not a name'"),
        ("h._private", Holder, "has no attribute '_private'"),
    ],
)
def test_schema_lookup_errors_are_clear(name: str, value: Any, message: str) -> None:
    namespace = {} if value is None else {name.split(".")[0]: value}
    with pytest.raises(SchemaLookupError) as caught:
        schema_from_namespace(name, namespace)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ConfigError)


def test_a_type_pydantic_cannot_use_is_refused_at_lookup() -> None:
    class Opaque:
        pass

    with pytest.raises(SchemaLookupError, match="cannot make a JSON schema from the type Opaque"):
        schema_from_namespace("Opaque", {"Opaque": Opaque})


def test_a_field_constraint_reaches_both_the_instruction_and_validation() -> None:
    class Rating(BaseModel):
        stars: int = Field(ge=1, le=5)

    assert '"minimum":1' in json_instruction(Rating) or '"minimum": 1' in json_instruction(Rating)
    with pytest.raises(StructuredOutputError, match="stars: Input should be less than or equal to 5"):
        validate({"stars": 9}, Rating)
    with pytest.raises(StructuredOutputError, match="stars: 9 is greater than 5"):
        validate({"stars": 9}, TypeAdapter(Rating).json_schema())
