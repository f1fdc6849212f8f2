"""JSON-mode replies: a JSON object shaped by what the prompt asks for.

JSON mode is mostly used to turn replies into Python data (dicts, DataFrames),
so the emulated object follows the prompt: an embedded JSON Schema is filled
in; an embedded example object is mirrored; "keys name, dtype, note" gives an
object with those keys; a bullet list of items gives one record per item under
a list key.  Without any of these the object describes the request itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

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
_KEY_LIST = re.compile(r"(?i)\b(?:keys|fields|properties|attributes)\b([^\n.;]+)")
_COLUMN_LIST = re.compile(r"(?i)\bcolumns\b([^\n.;]+)")
_FILLER = re.compile(r"(?i)^\s*(?:(?:named|called|like|such as|are|with|the)\b\s*|[:=]\s*)*")
_KEYS_BEFORE = re.compile(r"((?:[`\"']\w+[`\"']\s*(?:,|\band\b|\bor\b)?\s*){2,})(?:keys|fields|properties)\b")


def json_content(conversation: Conversation, *, model: str, thinking: bool) -> str:
    """The JSON text of an emulated JSON-mode reply."""
    text = f"{conversation.system}\n{conversation.last_user}"[:20_000]
    hints = Hints(text, query=conversation.last_user)
    value = build_object(text, hints)
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


def build_object(text: str, hints: Hints) -> Any:
    """The value the prompt asks for, or ``None`` when it asks for nothing specific."""
    schema, example, rest = embedded_json(text)
    if schema is not None or example is not None:
        # Values come from the prose, not from the schema's or example's own words.
        hints = Hints(rest, query=hints.query)
    if schema is not None:
        return instance(schema, hints)
    if example is not None:
        return instance(schema_of(example), hints)
    keys = requested_keys(text)
    if keys:
        hints = Hints(text, query=hints.query, exclude=tuple(keys))
        record = {"type": "object", "properties": {k: _guess(k) for k in keys}, "required": keys}
        if hints.items:
            return {list_key(text): [instance(record, hints, item=item) for item in hints.items[:20]]}
        return instance(record, hints)
    if hints.items:
        record = {"type": "object", "properties": {"name": {"type": "string"}, "note": {"type": "string"}}}
        return {list_key(text): [instance(record, hints, item=item) for item in hints.items[:20]]}
    return None


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


def requested_keys(text: str) -> list[str]:
    """Key names the prompt asks for, e.g. "with keys name, dtype, note"."""
    match = _KEYS_BEFORE.search(text)
    if match:
        return _unique(re.findall(r"[`\"'](\w+)[`\"']", match.group(1)))
    match = _KEY_LIST.search(text) or _COLUMN_LIST.search(text)
    if not match:
        return []
    keys: list[str] = []
    for part in re.split(r",|/|\band\b|\bor\b", _FILLER.sub("", match.group(1))):
        found = re.match(r"\s*[`\"']?([A-Za-z_]\w{0,40})", part)
        if not found:
            break
        keys.append(found.group(1))
    return _unique(keys)[:20]


def _unique(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def list_key(text: str) -> str:
    """Where a list of records goes: "list of cities" -> "cities", else "items"."""
    match = (
        re.search(r"(?i)\bunder (?:the )?key [`\"']?(\w+)", text)
        or re.search(r"(?i)\blist [`\"'](\w+)[`\"']", text)
        or re.search(r"(?i)\blist of (\w+)", text)
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
