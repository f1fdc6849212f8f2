"""The emulator's JSON mode answers what the prose or the schema asks for, with values that follow the input.

Offline demos of JSON mode and batch classification only make sense when "a
list of 3 records with keys a, b" gives three such records, "sentiment
(positive/negative/mixed)" one of those labels (the one the review calls
for), and ``--schema`` valid data of exactly the schema's shape on the first
try. Everything here goes through the real HTTP emulator and the library's
own JSON path (``Session.ask(json=True)``, ``--schema``, ``run_batch``).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any, Literal

import jsonschema
import pandas as pd
import pytest
from pydantic import BaseModel, Field

from deepseek_magic import Session, Settings
from deepseek_magic.batch import USAGE_COLUMNS, run_batch
from deepseek_magic.emulator import EmulatorConfig, RunningEmulator, run_in_thread
from deepseek_magic.emulator.asks import KeySpec, counted, requested_keys
from deepseek_magic.emulator.jsonmode import build_object

KEY = "sk-emulator"
REVIEWS = {
    "The battery life is poor but the screen is great.": "mixed",
    "I love this blender, it works perfectly.": "positive",
    "The coffee was cold and bitter and the staff were rude.": "negative",
    "Excellent service, friendly people, fast delivery.": "positive",
}
CLASSIFY = "Classify this review as JSON with keys sentiment (positive/negative/mixed) and topic: {review}"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with run_in_thread(EmulatorConfig(api_key=KEY, ttft=0.0, tps=0.0)) as emu:
        yield emu


def session(emu: RunningEmulator) -> Session:
    return Session(settings=Settings.build(base_url=emu.base_url, api_key=KEY, backoff_base=0.01))


def chat_requests(emu: RunningEmulator) -> int:
    return sum(1 for request in emu.requests if request.path.endswith("/chat/completions"))


# ------------------------------------------------------------------ reading the prose


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("a JSON list of 3 records with keys a, b", [KeySpec("a"), KeySpec("b")]),
        ("JSON with keys a (x/y/z) and b", [KeySpec("a", ("x", "y", "z")), KeySpec("b")]),
        (
            "as JSON with keys sentiment (positive/negative/mixed) and topic: The battery is poor",
            [KeySpec("sentiment", ("positive", "negative", "mixed")), KeySpec("topic")],
        ),
        (
            "fields label (one of spam, ham or unsure), score (integer)",
            [
                KeySpec("label", ("spam", "ham", "unsure")),
                KeySpec("score", type="integer"),
            ],
        ),
        (
            "Describe the columns with keys name, dtype, note for the column 'price'.",
            [
                KeySpec("name"),
                KeySpec("dtype"),
                KeySpec("note"),
            ],
        ),
        ("keys price (in USD) and city", [KeySpec("price"), KeySpec("city")]),
        ("2 rows × 2 columns\ndtypes: a: int64", []),
    ],
)
def test_key_lists_with_their_allowed_values(text: str, keys: list[KeySpec]) -> None:
    assert requested_keys(text)[0] == keys


@pytest.mark.parametrize(
    ("text", "count", "noun"),
    [
        ("a JSON list of 3 records with keys a, b", 3, "records"),
        ("five cities as JSON with keys name, country", 5, "cities"),
        ("Give me 4 examples in json", 4, "examples"),
        ("What is 2 + 2? Answer in JSON with keys answer", None, None),
    ],
)
def test_counts(text: str, count: int | None, noun: str | None) -> None:
    found = counted(text)
    assert ((found.count, found.noun) if found else (None, None)) == (count, noun)


# ------------------------------------------------------------------ over HTTP, through the library


def test_a_list_of_three_records_becomes_a_three_row_frame(emulator: RunningEmulator) -> None:
    reply = session(emulator).ask("Give me a JSON list of 3 records with keys a, b", json=True)
    frame = reply.data
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["a", "b"] and len(frame) == 3
    assert frame["a"].nunique() == 3, "three different records, not one copied three times"
    assert set(json.loads(reply.content)) == {"records"}


def test_listed_values_are_the_only_values_and_vary_with_the_input(emulator: RunningEmulator) -> None:
    ask = session(emulator)
    seen = []
    for topic in ("apples", "rivers", "trains", "violins", "glaciers", "poems", "bridges", "owls"):
        data = ask.ask(f"About {topic}: answer as JSON with keys a (x/y/z) and b", json=True, key=topic).data
        assert set(data) == {"a", "b"} and data["a"] in {"x", "y", "z"}
        seen.append(data["a"])
    assert len(set(seen)) >= 2, f"every input got the same label: {seen}"
    again = ask.ask("About owls: answer as JSON with keys a (x/y/z) and b", json=True, key="again", cache=None)
    assert again.data["a"] == seen[-1], "the same input gets the same label"


@pytest.mark.parametrize(("review", "expected"), list(REVIEWS.items()))
def test_a_review_is_classified_by_what_it_says(emulator: RunningEmulator, review: str, expected: str) -> None:
    data = session(emulator).ask(CLASSIFY.format(review=review), json=True).data
    assert set(data) == {"sentiment", "topic"}
    assert data["sentiment"] == expected
    assert data["topic"] and data["topic"].lower() in review.lower()


def test_batch_classification_gives_two_columns_with_sensible_values(emulator: RunningEmulator) -> None:
    frame = pd.DataFrame({"review": list(REVIEWS)})
    result = run_batch(session(emulator), frame, CLASSIFY, json=True)
    assert list(result.columns) == ["sentiment", "topic", *USAGE_COLUMNS]
    assert result["error"].isna().all()
    assert list(result["sentiment"]) == list(REVIEWS.values())
    assert result["topic"].nunique() == len(REVIEWS)


class Review(BaseModel):
    sentiment: Literal["positive", "negative", "mixed"]
    topic: str
    stars: int = Field(ge=1, le=5)
    tags: list[str] = Field(min_length=2)
    reviewed_on: datetime.date
    reply_needed: bool
    note: str | None = None


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    city: str


SCHEMAS: list[Any] = [
    Review,
    Person,
    list[Person],
    {
        "type": "object",
        "properties": {
            "label": {"enum": ["spam", "ham"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "spans": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {"start": {"type": "integer", "minimum": 0}, "text": {"type": "string"}},
                    "required": ["start", "text"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["label", "confidence", "spans"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "string", "enum": ["red", "green"]}, "minItems": 2},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: getattr(s, "__name__", None) or str(s)[:30])
def test_schema_requests_are_answered_with_valid_data_of_exactly_that_shape(
    emulator: RunningEmulator, schema: Any
) -> None:
    before = chat_requests(emulator)
    prompt = "Here is the text: the staff were rude and the food was cold. Answer in JSON."
    reply = session(emulator).ask(prompt, schema=schema)
    assert chat_requests(emulator) - before == 1, "valid on the first try: no re-ask"
    data = reply.data
    if isinstance(schema, dict):
        raw = json.loads(reply.content)
        instance = raw["items"] if schema.get("type") == "array" else raw
        jsonschema.validate(instance, schema)
        if schema.get("type") == "object":
            assert set(raw) == set(schema["required"]), "exactly the schema's keys"
    elif schema is Review:
        assert isinstance(data, Review) and data.sentiment == "negative"
        keys = set(json.loads(reply.content))
        assert set(Review.model_fields) - {"note"} <= keys <= set(Review.model_fields), "exactly the model's fields"
    else:
        rows = data.to_dict("records") if isinstance(data, pd.DataFrame) else [data.model_dump()]
        assert rows and all(Person.model_validate(row) for row in rows)
        assert all(18 <= row["age"] <= 80 for row in rows), "ages in a plausible range inside the schema's"


def test_a_model_schema_with_a_count_gives_that_many_records(emulator: RunningEmulator) -> None:
    reply = session(emulator).ask("Invent 4 people as JSON", schema=Person)
    assert isinstance(reply.data, pd.DataFrame) and list(reply.data.columns) == ["name", "age", "city"]
    assert len(reply.data) == 4 and reply.data["name"].nunique() == 4


def test_answers_are_deterministic_per_input() -> None:
    text = "Classify as JSON with keys mood (calm/tense/odd), count: the night train"
    assert build_object(text) == build_object(text)
    other = {json.dumps(build_object(f"Classify as JSON with keys mood (calm/tense/odd): item {i}")) for i in range(12)}
    assert len(other) > 1
