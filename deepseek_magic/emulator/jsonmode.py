"""JSON-mode replies: a JSON object shaped by what the prompt asks for.

JSON mode is mostly used to turn replies into Python data (dicts, DataFrames),
so the emulated object follows the prompt: an embedded JSON Schema (what
``--schema`` sends) is filled in with valid data of exactly its shape; an
embedded example object is mirrored; "keys name, dtype, note" gives an object
with those keys, "sentiment (positive/negative/mixed)" one of those labels;
"a list of 3 records with keys a, b" gives three such objects under
``"records"``; a bullet list of items gives one record per item. Values the
prompt does not state follow the input, deterministically (:mod:`.labels`), so
a batch of different rows gets different, sensible answers. Without any of
these the object describes the request itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from deepseek_magic.emulator.asks import Counted, KeySpec, counted, requested_keys, without
from deepseek_magic.emulator.prompt import Conversation, key_terms, one_line, words
from deepseek_magic.emulator.schema import Hints, instance

_NUMERIC = (
    "count",
    "age",
    "year",
    "price",
    "amount",
    "number",
    "quantity",
    "score",
    "rating",
    "stars",
    "total",
    "size",
    "temperature",
    "temp",
    "population",
    "index",
    "rank",
    "n",
)
_BOOLEAN_PREFIXES = ("is_", "has_", "can_", "should_")
_BOOLEAN = ("valid", "ok", "done", "flag", "enabled", "active")
_LISTS = ("tags", "keywords", "aliases", "values", "labels", "examples")
#: "Review: …" at the start of the subject: a label, not part of the input.
_LEADING_LABEL = re.compile(r"^[\s.:;,-]*(?:[A-Za-z]\w{0,20}:\s+)?")
#: The instruction structured.json_instruction writes for a pydantic model: where several records go.
_RECORDS_KEY = re.compile(r"""reply \{\s*["'](\w+)["']\s*:\s*\[""")
#: Records made when an array is asked for with no count and no items.
DEFAULT_RECORDS = 3


def json_content(conversation: Conversation, *, model: str, thinking: bool) -> str:
    """The JSON text of an emulated JSON-mode reply."""
    user = conversation.last_user[:20_000]
    text = f"{conversation.system}\n{user}"[:20_000]
    value = build_object(text, user)
    if value is None:
        value = {
            "emulated": True,
            "model": model,
            "thinking": thinking,
            "summary": one_line(conversation.last_user, 100),
            "keywords": key_terms(conversation.last_user, 5),
            "word_count": len(words(conversation.last_user)),
        }
    return json.dumps(value, ensure_ascii=False)


def subject_of(user: str, *spans: tuple[int, int] | None) -> str:
    """The input the values are judged by: the user's text without the key list and the count.

    When the key list is followed by the input itself ("… and topic: The
    battery is poor"), only what follows counts; a leading label ("Review:")
    is dropped either way.
    """
    key_span = spans[0] if spans else None
    if key_span is not None:
        later = [(s[0] - key_span[1], s[1] - key_span[1]) for s in spans[1:] if s is not None and s[0] >= key_span[1]]
        after = _unlabelled(without(user[key_span[1] :], *later))
        if len(words(after)) >= 3:
            return after
    return _unlabelled(without(user, *spans))


def _unlabelled(text: str) -> str:
    stripped = _LEADING_LABEL.sub("", text, count=1)
    return stripped if len(words(stripped)) >= 3 else text


def build_object(text: str, user: str | None = None) -> Any:
    """The value the prompt asks for, or ``None`` when it asks for nothing specific.

    ``text`` is everything the model was told (system and user); ``user`` the
    user's own message, whose count ("3 records") and subject steer the values.
    """
    user = text if user is None else user
    schema, example, rest = embedded_json(text)
    keys, key_span_in_rest = requested_keys(rest)
    _, user_key_span = requested_keys(user)
    count = counted(user)
    subject = subject_of(user, user_key_span, count.span if count else None)
    base = without(rest, key_span_in_rest)  # "topic: …" ending a key list is not a value labelled "topic"
    if schema is not None or example is not None:
        # Values come from the prose, not from the schema's or example's own words.
        hints = Hints(base, query=subject, subject=subject, vary=True)
        if schema is not None:
            return _from_schema(schema, hints, text, count)
        return instance(schema_of(example), hints)
    if keys:
        names = tuple(key.name for key in keys)
        hints = Hints(base, query=subject, exclude=names, subject=subject, vary=True)
        record = record_schema(keys)
        if hints.items:
            return {list_key(text): [instance(record, hints, item=item) for item in hints.items[:20]]}
        if count is not None:
            return {_noun_key(count, text): _records(record, hints, count.count)}
        return instance(record, hints)
    hints = Hints(text, query=user, subject=subject, vary=True)
    if hints.items:
        record = {"type": "object", "properties": {"name": {"type": "string"}, "note": {"type": "string"}}}
        return {list_key(text): [instance(record, hints, item=item) for item in hints.items[:20]]}
    if count is not None:
        record = {"type": "object", "properties": {"name": {"type": "string"}, "note": {"type": "string"}}}
        return {_noun_key(count, text): _records(record, hints, count.count)}
    return None


def _from_schema(schema: dict[str, Any], hints: Hints, text: str, count: Counted | None) -> Any:
    """Valid data of exactly the schema's shape (an array goes under the key the instruction names)."""
    if schema.get("type") == "array":
        items = schema.get("items", {})
        wanted = count.count if count is not None else (len(hints.items[:20]) or DEFAULT_RECORDS)
        low, high = schema.get("minItems"), schema.get("maxItems")
        if isinstance(low, int):
            wanted = max(wanted, low)
        if isinstance(high, int):
            wanted = min(wanted, high)
        labels = hints.items[:wanted]
        values = [
            instance(items, hints, root=schema, item=labels[i] if i < len(labels) else None, index=i)
            for i in range(wanted)
        ]
        return {list_key(text): values}
    several = _RECORDS_KEY.search(text)
    if several is not None and count is not None and count.count > 1:
        return {several.group(1): [instance(schema, hints, index=i) for i in range(count.count)]}
    return instance(schema, hints)


def _records(record: dict[str, Any], hints: Hints, count: int) -> list[Any]:
    return [instance(record, hints, index=i) for i in range(count)]


def _noun_key(count: Counted, text: str) -> str:
    """Where counted records go: an explicit "under the key X", else the noun ("3 records" → records)."""
    named = list_key(text)
    if named != "items":
        return named
    return count.noun if count.noun.isidentifier() else "items"


def record_schema(keys: list[KeySpec]) -> dict[str, Any]:
    """The object schema the prose asks for: each key's listed values as an enum, its type guessed from its name."""
    properties: dict[str, Any] = {}
    for key in keys:
        if key.choices:
            properties[key.name] = {"type": "string", "enum": list(key.choices)}
        elif key.type is not None:
            properties[key.name] = (
                {"type": key.type, "items": {"type": "string"}} if key.type == "array" else {"type": key.type}
            )
        else:
            properties[key.name] = _guess(key.name)
    return {"type": "object", "properties": properties, "required": list(properties)}


def embedded_json(text: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
    """The first JSON Schema and the first other object written in ``text``, and the text without them."""
    decoder = json.JSONDecoder()
    schema: dict[str, Any] | None = None
    example: dict[str, Any] | None = None
    rest, cursor = [], 0
    for attempt, match in enumerate(re.finditer(r"\{", text)):
        if attempt >= 200 or (schema is not None and example is not None):
            break
        if match.start() < cursor:
            continue
        try:
            value, end = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if not isinstance(value, dict) or not value:
            continue
        if _looks_like_schema(value):
            schema = schema or value
        else:
            example = example or value
        rest.append(text[cursor : match.start()])
        cursor = end
    rest.append(text[cursor:])
    return schema, example, " ".join(rest)


def _looks_like_schema(value: dict[str, Any]) -> bool:
    return isinstance(value.get("properties"), dict) or (
        value.get("type") in ("object", "array") and ("items" in value or "$defs" in value)
    )


def schema_of(example: object) -> dict[str, Any]:
    """A schema that an example value satisfies (its keys, types and nesting)."""
    if isinstance(example, dict):
        props = {str(k): schema_of(v) for k, v in example.items()}
        return {"type": "object", "properties": props, "required": list(props)}
    if isinstance(example, list):
        return {"type": "array", "items": schema_of(example[0]) if example else {"type": "string"}}
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int):
        return {"type": "integer"}
    if isinstance(example, float):
        return {"type": "number"}
    if example is None:
        return {"type": "null"}
    return {"type": "string"}


def list_key(text: str) -> str:
    """Where a list of records goes: "list of cities" -> "cities", else "items"."""
    match = (
        re.search(r"(?i)\bunder (?:the )?key [`\"']?(\w+)", text)
        or re.search(r"(?i)\blist [`\"'](\w+)[`\"']", text)
        or re.search(r"(?i)\blist of (?:\d+\s+|[a-z]+\s+(?=\w+s\b))?([A-Za-z_]\w*)", text)
    )
    return match.group(1).lower() if match else "items"


def _guess(key: str) -> dict[str, Any]:
    """A schema for a key named in prose, guessed from its name."""
    lowered = key.lower()
    if lowered in _NUMERIC or lowered.endswith(("_count", "_id", "_total")):
        return {"type": "integer"}
    if lowered.startswith(_BOOLEAN_PREFIXES) or lowered in _BOOLEAN:
        return {"type": "boolean"}
    if lowered in _LISTS:
        return {"type": "array", "items": {"type": "string"}}
    return {"type": "string"}
