"""Build a JSON value that satisfies a JSON Schema, using values from the prompt.

Used for tool-call arguments (the tool's ``parameters`` schema) and for JSON
mode when the prompt embeds a schema.  Values come from the prompt where a
simple heuristic finds one (``city: Paris``, "weather in San Francisco", a
quoted string, a number), otherwise from type-correct placeholders, so a
client's validation code sees realistic, valid data.  Enums, ``const``,
``$ref``, ``anyOf``/``oneOf``, numeric bounds and ``minItems`` are respected.
"""

from __future__ import annotations

import re
from typing import Any

from deepseek_magic.emulator.prompt import (
    bullet_items,
    key_terms,
    labelled_value,
    numbers,
    one_line,
    place,
    proper_phrases,
    quoted_strings,
    table_columns,
)

_FORMATS = {
    "email": "user@example.com",
    "date": "2024-01-01",
    "date-time": "2024-01-01T12:00:00Z",
    "time": "12:00:00",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}
_PLACE = ("location", "city", "place", "country", "region", "destination", "origin", "address", "where")
_QUERY = ("query", "q", "text", "prompt", "question", "message", "input", "search", "topic", "content", "queries")
_NOTE = ("description", "summary", "note", "notes", "comment", "reason", "explanation", "details")
_NAME = ("name", "title", "label", "player", "user", "username", "item", "product")
_DTYPES = ("string", "int64", "float64", "bool", "datetime64[ns]", "category")
_NUMBER_DEFAULTS = {"age": 30, "year": 2024, "price": 9.99, "temperature": 21, "temp": 21, "score": 4, "rating": 4}
_MAX_DEPTH = 8


class Hints:
    """Values found in the prompt, offered to the schema filler."""

    def __init__(self, text: str, *, query: str = "", exclude: tuple[str, ...] = ()) -> None:
        self.text = text[:20_000]
        self.query = one_line(query or text, 120)
        self.columns = table_columns(self.text)
        self.items = list(self.columns) or bullet_items(self.text)
        self.quoted = [q for q in quoted_strings(self.text) if q not in exclude]
        self.numbers = numbers(self.text)
        self.place = place(self.text, exclude)
        self.phrases = proper_phrases(self.text, exclude)
        self.terms = key_terms(self.text, 8) or ["example"]


def instance(schema: object, hints: Hints, *, name: str = "", root: object = None, item: str | None = None) -> Any:
    """A value valid for ``schema``; ``name`` is the property it fills, ``item`` a record's label."""
    return _value(schema, hints, name, root if root is not None else schema, item, 0, 0)


def _value(schema: object, hints: Hints, name: str, root: object, item: str | None, index: int, depth: int) -> Any:
    if not isinstance(schema, dict):
        return _string({}, hints, name, item, index)
    if depth > _MAX_DEPTH:
        return None
    if isinstance(schema.get("$ref"), str):
        target = _resolve(schema["$ref"], root)
        return _value(target, hints, name, root, item, index, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _enum(schema["enum"], hints, name)
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            chosen = next((b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")), branches[0])
            return _value(chosen, hints, name, root, item, index, depth + 1)
    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, hints, root, item, index, depth)
    if kind == "array":
        return _array(schema, hints, name, root, depth)
    if kind in ("integer", "number"):
        return _number(schema, hints, name, kind == "integer", index)
    if kind == "boolean":
        found = labelled_value(hints.text, name)
        return not (found and found.lower() in ("false", "no", "off", "0"))
    if kind == "null":
        return None
    return _string(schema, hints, name, item, index)


def _resolve(ref: str, root: object) -> object:
    """Follow a local ``#/...`` reference; anything else resolves to ``{}``."""
    node: object = root
    if not ref.startswith("#"):
        return {}
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _enum(options: list[Any], hints: Hints, name: str) -> Any:
    """The enum value the prompt mentions (labelled first), else the first one."""
    labelled = labelled_value(hints.text, name)
    lowered = hints.text.lower()
    for option in options:
        if labelled is not None and str(option).lower() == labelled.lower():
            return option
    for option in options:
        if isinstance(option, str) and re.search(rf"(?i)\b{re.escape(option)}\b", lowered):
            return option
    return options[0]


def _object(
    schema: dict[str, Any], hints: Hints, root: object, item: str | None, index: int, depth: int
) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    required = schema.get("required")
    chosen = [
        key
        for key, sub in properties.items()
        if not isinstance(required, list)
        or key in required
        or labelled_value(hints.text, key) is not None
        or (isinstance(sub, dict) and "default" in sub)
    ]
    label_key = _label_key(properties) if item is not None else None
    result: dict[str, Any] = {}
    for key in chosen:
        sub = properties[key]
        if key == label_key:
            result[key] = item
        elif isinstance(sub, dict) and "default" in sub and not (isinstance(required, list) and key in required):
            result[key] = sub["default"]
        else:
            result[key] = _value(sub, hints, key, root, item, index, depth + 1)
    return result


def _label_key(properties: dict[str, Any]) -> str | None:
    """The property that should carry a record's label: a name-like or the first string one."""
    strings = [k for k, v in properties.items() if isinstance(v, dict) and _type_of(v) == "string" and "enum" not in v]
    for key in strings:
        if key.lower() in _NAME:
            return key
    return strings[0] if strings else None


def _array(schema: dict[str, Any], hints: Hints, name: str, root: object, depth: int) -> list[Any]:
    items = schema.get("items", {})
    min_items = min(_int(schema.get("minItems"), 0), 50)
    max_items = _int(schema.get("maxItems"), 20)
    values: list[Any]
    if hints.items and depth <= 2:
        values = [_value(items, hints, name, root, label, i, depth + 1) for i, label in enumerate(hints.items[:20])]
    elif isinstance(items, dict) and _type_of(items) == "string" and "enum" not in items and "format" not in items:
        values = list(hints.quoted[:5]) or list(hints.terms[:3])
    else:
        values = [_value(items, hints, name, root, None, 0, depth + 1)]
    while len(values) < min_items:
        values.append(_value(items, hints, name, root, None, len(values), depth + 1))
    return values[: max(max_items, min_items)]


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _number(schema: dict[str, Any], hints: Hints, name: str, integer: bool, index: int) -> float | int:
    value: float | None = None
    labelled = labelled_value(hints.text, name)
    if labelled:
        found = numbers(labelled)
        value = found[0] if found else None
    lowered = name.lower()
    if value is None:
        value = next((float(v) for k, v in _NUMBER_DEFAULTS.items() if k in lowered), None)
    if value is None and lowered.endswith("id"):
        value = float(index + 1)
    if value is None:
        value = hints.numbers[0] if hints.numbers else float(index + 1)
    value = _clamp(value, schema)
    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and not isinstance(multiple, bool) and multiple > 0:
        value = round(value / multiple) * multiple
    return round(value) if integer else value


def _clamp(value: float, schema: dict[str, Any]) -> float:
    def bound(key: str) -> float | None:
        raw = schema.get(key)
        return float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None

    low, high = bound("minimum"), bound("maximum")
    ex_low, ex_high = bound("exclusiveMinimum"), bound("exclusiveMaximum")
    if low is not None:
        value = max(value, low)
    if ex_low is not None and value <= ex_low:
        value = ex_low + 1
    if high is not None:
        value = min(value, high)
    if ex_high is not None and value >= ex_high:
        value = ex_high - 1
    return value


def _string(schema: dict[str, Any], hints: Hints, name: str, item: str | None, index: int) -> str:
    value = _string_value(schema, hints, name, item, index)
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value.ljust(min_length, "x")
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and max_length >= 0:
        value = value[:max_length]
    return value


def _string_value(schema: dict[str, Any], hints: Hints, name: str, item: str | None, index: int) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    labelled = labelled_value(hints.text, name) or labelled_value(hints.text, name.replace("_", " "))
    if labelled:
        return labelled
    lowered = name.lower()
    if any(word == lowered or lowered.endswith("_" + word) for word in _PLACE):
        return hints.place or (hints.phrases[0] if hints.phrases else hints.terms[0])
    if lowered in _QUERY:
        return hints.query
    if lowered in _NOTE:
        subject = item or hints.terms[min(index, len(hints.terms) - 1)]
        return f"[emulated] note about {subject}"
    if lowered in ("dtype", "data_type", "datatype"):
        if item is not None and item in hints.columns:
            return hints.columns[item]
        return _DTYPES[index % len(_DTYPES)]
    if lowered in _NAME and (hints.quoted or hints.phrases):
        return (hints.quoted or hints.phrases)[index % len(hints.quoted or hints.phrases)]
    if hints.quoted:
        return hints.quoted[index % len(hints.quoted)]
    if hints.place:
        return hints.place
    return hints.terms[index % len(hints.terms)]
