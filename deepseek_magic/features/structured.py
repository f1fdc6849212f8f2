"""JSON mode: from a DeepSeek reply to validated Python data (and a DataFrame when it is a table).

DeepSeek offers only ``response_format: {"type": "json_object"}``: no server-side
schema, the request is refused (HTTP 400) unless the prompt mentions "json",
the reply may come back blank, and ``finish_reason: "length"`` can cut the JSON
off. So this module does on the client what the server does not: it adds an
instruction (with the schema) to the prompt, digs the JSON out of fences and
prose, validates it against a pydantic model, a type or a JSON-schema dict,
phrases the one retry, and turns record lists into DataFrames.

JSON-schema dicts are checked by a small built-in validator instead of the
``jsonschema`` package, which is not a dependency. It covers ``type`` (one or a
list), ``properties``, ``required``, ``additionalProperties`` (false or a
schema), ``items`` (a schema), ``enum``, ``const``, ``minimum``/``maximum``,
``exclusiveMinimum``/``exclusiveMaximum`` (numbers), ``minLength``/``maxLength``,
``minItems``/``maxItems``, ``anyOf``/``allOf``, ``oneOf`` (checked as anyOf) and
local ``$ref`` (``#/$defs/...``, ``#/definitions/...``, as pydantic writes them).
It ignores everything else: ``pattern``, ``format``, ``uniqueItems``,
``multipleOf``, ``prefixItems``, ``patternProperties``, ``dependentRequired``,
``if``/``then``/``else``, ``contains``, remote references. For full JSON Schema,
validate ``reply.data`` with ``jsonschema`` yourself, or pass a pydantic model.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Mapping
from typing import Any

import jsonschema
import referencing.exceptions
from pydantic import BaseModel, TypeAdapter, ValidationError

from deepseek_magic.core.errors import ConfigError, ReplyError

__all__ = [
    "JSON_INSTRUCTION",
    "LIST_KEY",
    "SchemaLookupError",
    "StructuredOutputError",
    "json_instruction",
    "json_schema_of",
    "mentions_json",
    "parse_json_reply",
    "retry_message",
    "schema_from_namespace",
    "to_python",
    "validate",
]

JSON_INSTRUCTION = "Reply with a single valid JSON object."
LIST_KEY = "items"
"""The key a list goes under: JSON mode only returns objects, so lists arrive wrapped."""

_SUMMARY_PROBLEMS = 3  # problems named in the one-line message; all of them stay in ``.problems``
_MAX_PROBLEMS = 50
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_DOTTED = re.compile(r"[^\W\d]\w*(?:\.[^\W\d]\w*)*")


class StructuredOutputError(ReplyError, ValueError):
    """The JSON reply is blank, not JSON, or does not match the schema.

    ``raw`` keeps the reply text so nothing the model wrote is lost; ``problems``
    lists each schema violation as ``"path: message"``.
    """

    def __init__(
        self, message: str, *, raw: str | None = None, problems: list[str] | None = None, truncated: bool = False
    ) -> None:
        super().__init__(" ".join(message.split()))
        self.raw = raw
        self.problems: list[str] = list(problems or [])
        self.truncated = truncated


class SchemaLookupError(ConfigError):
    """``--schema NAME`` names nothing usable; raised before anything is sent."""


# --------------------------------------------------------------------------- prompt side


def mentions_json(messages: list[dict[str, Any]]) -> bool:
    """Whether a system or user message says "json": DeepSeek answers 400 in JSON mode otherwise."""
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") not in ("system", "user"):
            continue
        if "json" in _text_of(message.get("content")).lower():
            return True
    return False


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def json_schema_of(schema: Any) -> dict[str, Any]:
    """The JSON schema of a pydantic model, a type pydantic understands, or a JSON-schema dict (as is)."""
    if isinstance(schema, dict):
        return schema
    try:
        if _is_model(schema):
            return schema.model_json_schema()
        return TypeAdapter(schema).json_schema()
    except Exception as exc:
        raise SchemaLookupError(f"cannot make a JSON schema from {_describe(schema)}: {_one_line(exc)}") from None


def json_instruction(schema: Any | None = None) -> str:
    """The system message for JSON mode.

    Always needed with a schema (the server does not know it); without one it is
    only needed when the prompt lacks the word "json". The schema is written
    compactly, without pydantic's per-field titles, to spend few tokens. A
    model's records may come as a list: the model is told to wrap them under
    ``"items"``, which :func:`validate` unwraps.
    """
    if schema is None:
        return JSON_INSTRUCTION
    document = _without_titles(json_schema_of(schema), keep=True)
    compact = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    if document.get("type") == "array":
        return (
            f'{JSON_INSTRUCTION} Put the array under the key "{LIST_KEY}"; '
            f"the array must match this JSON schema: {compact}"
        )
    text = f"{JSON_INSTRUCTION} It must match this JSON schema: {compact}"
    if _is_model(schema):
        text += f' If several records are asked for, reply {{"{LIST_KEY}": [...]}} with each record matching it.'
    return text


_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "not", "contains")


def _without_titles(schema: Any, *, keep: bool = False) -> Any:
    """``schema`` without "title" keywords below the root (a property *named* title is kept)."""
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and not keep:
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            result[key] = {name: _without_titles(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            result[key] = [_without_titles(sub) for sub in value]
        elif key in _SUBSCHEMAS:
            result[key] = _without_titles(value)
        else:
            result[key] = value
    return result


# --------------------------------------------------------------------------- reply side


def parse_json_reply(text: str) -> Any:
    """The JSON value in a reply, tolerating code fences and prose around it.

    Models wrap JSON in Markdown fences or add a sentence even in JSON mode; the
    plain parse is tried first so a string value that itself contains a fence is
    not mistaken for one.
    """
    if text is None or not isinstance(text, str) or not text.strip():
        raise StructuredOutputError("the reply was blank", raw=text)
    stripped = text.strip().lstrip("\ufeff")
    candidates = [stripped]
    fenced = [(lang.lower(), body.strip()) for lang, body in _FENCE.findall(stripped)]
    candidates += [body for lang, body in fenced if lang in ("json", "json5", "jsonc")]
    candidates += [body for lang, body in fenced if lang not in ("json", "json5", "jsonc")]
    first_error: ValueError | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError) as exc:
            first_error = first_error or (exc if isinstance(exc, ValueError) else ValueError(str(exc)))
    focus = candidates[1] if len(candidates) > 1 else stripped
    start = _first_opener(focus)
    if start < 0:
        raise StructuredOutputError("the reply is not valid JSON: it contains no JSON object or array", raw=text)
    closer = "}" if focus[start] == "{" else "]"
    end = focus.rfind(closer)
    if end > start:
        try:
            return json.loads(focus[start : end + 1])
        except (ValueError, RecursionError):
            pass
    try:
        return json.JSONDecoder().raw_decode(focus, start)[0]
    except (ValueError, RecursionError) as exc:
        reason, truncated = _json_reason(exc, focus)
    raise StructuredOutputError(f"the reply is not valid JSON: {reason}", raw=text, truncated=truncated)


def _first_opener(text: str) -> int:
    positions = [index for index in (text.find("{"), text.find("[")) if index >= 0]
    return min(positions) if positions else -1


def _json_reason(exc: Exception, candidate: str) -> tuple[str, bool]:
    """Why parsing failed, and whether the JSON looks cut off (``finish_reason: "length"``)."""
    if isinstance(exc, json.JSONDecodeError):
        if exc.pos >= len(candidate.rstrip()) - 1 or exc.msg.startswith("Unterminated"):
            return f"it breaks off before the JSON is complete (cut off by max_tokens?): {exc.msg}", True
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}", False
    return _one_line(exc), False


def validate(data: Any, schema: Any) -> Any:
    """``data`` checked against ``schema``; returns model instances for pydantic schemas.

    ``schema`` is a pydantic model class (a list of records, or a dict whose only
    key holds the list, gives a list of models), another type pydantic can
    validate (``list[Model]``, a TypedDict, ...), or a JSON-schema dict (checked
    by the built-in validator; ``data`` comes back unchanged, or unwrapped from
    ``{"items": [...]}`` for an array schema).
    """
    if isinstance(schema, dict):
        problems = _schema_problems(data, schema)
        wrapped = _single_list(data)
        if problems and wrapped is not None and schema.get("type") == "array":
            key, records = wrapped
            problems = _schema_problems(records, schema, key)
            if not problems:
                return records
        if problems:
            _fail(problems, data)
        return data
    if _is_model(schema):
        return _validate_model(data, schema)
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(schema)
    except Exception as exc:
        raise SchemaLookupError(f"cannot validate against {_describe(schema)}: {_one_line(exc)}") from None
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        problems = _pydantic_problems(exc, "")
    wrapped = _single_list(data)
    if wrapped is not None:
        key, records = wrapped
        try:
            return adapter.validate_python(records)
        except ValidationError as exc:
            if adapter.json_schema().get("type") == "array":
                problems = _pydantic_problems(exc, key)
    _fail(problems, data)


def _validate_model(data: Any, model: type[BaseModel]) -> Any:
    if isinstance(data, list):
        return _validate_records(data, model, "")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = _pydantic_problems(exc, "")
    wrapped = _single_list(data)
    if wrapped is not None:
        key, records = wrapped
        # {"people": [...]} for a Person model is a list of records; but if ``key`` is one of the
        # model's own fields the dict was meant as one record, and its own problems are the ones to show.
        if key in model.model_fields or any(field.alias == key for field in model.model_fields.values()):
            _fail(problems, data)
        return _validate_records(records, model, key)
    _fail(problems, data)


def _validate_records(records: list[Any], model: type[BaseModel], prefix: str) -> list[BaseModel]:
    result: list[BaseModel] = []
    problems: list[str] = []
    for position, record in enumerate(records):
        try:
            result.append(model.model_validate(record))
        except ValidationError as exc:
            problems += _pydantic_problems(exc, f"{prefix}[{position}]")
    if problems:
        _fail(problems, records)
    return result


def _single_list(data: Any) -> tuple[str, list[Any]] | None:
    """``(key, list)`` when ``data`` is a dict whose only value is a list: how JSON mode wraps lists."""
    if isinstance(data, dict) and len(data) == 1:
        key, value = next(iter(data.items()))
        if isinstance(value, list):
            return str(key), value
    return None


def _pydantic_problems(exc: ValidationError, prefix: str) -> list[str]:
    problems = []
    for error in exc.errors()[:_MAX_PROBLEMS]:
        path = prefix
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        problems.append(f"{path or '(root)'}: {error['msg']}")
    return problems


def _fail(problems: list[str], data: Any) -> typing.NoReturn:
    shown = "; ".join(problems[:_SUMMARY_PROBLEMS])
    more = f" (and {len(problems) - _SUMMARY_PROBLEMS} more)" if len(problems) > _SUMMARY_PROBLEMS else ""
    try:
        raw = json.dumps(data, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        raw = repr(data)
    raise StructuredOutputError(f"the reply does not match the schema: {shown}{more}", raw=raw, problems=problems)


# --- JSON-schema dicts: checked by the jsonschema library, reported in our words ------------
#
# Why a library: JSON Schema has many keywords and drafts; a hand-written
# checker covered a subset and silently passed the rest. jsonschema checks
# them all and yields *every* violation with its path, which the one-line
# summary and the one re-ask need. Only the wording is ours, so a message
# reads the same whichever keyword failed.

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}

_BOUND_WORDS = {
    "minimum": "less than",
    "maximum": "greater than",
    "exclusiveMinimum": "not greater than",
    "exclusiveMaximum": "not less than",
}
_SIZE_WORDS = {
    "minLength": ("characters", "fewer than"),
    "maxLength": ("characters", "more than"),
    "minItems": ("items", "fewer than"),
    "maxItems": ("items", "more than"),
}


def _schema_problems(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Every violation of ``schema`` by ``value``, one short line each (at most :data:`_MAX_PROBLEMS`)."""
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    problems: list[str] = []
    try:
        for error in validator_class(schema).iter_errors(value):
            problems.extend(_describe_error(error, path))
            if len(problems) >= _MAX_PROBLEMS:
                break
    except referencing.exceptions.Unresolvable as exc:
        ref = f"#{exc.ref}" if exc.ref.startswith("/") else exc.ref  # a JSON pointer comes without its "#"
        problems.append(f"{path or '(root)'}: the schema's $ref {ref} cannot be resolved")
    except (jsonschema.exceptions.SchemaError, jsonschema.exceptions.UnknownType, RecursionError) as exc:
        problems.append(f"{path or '(root)'}: the schema cannot be checked ({_one_line(exc)[:200]})")
    return problems[:_MAX_PROBLEMS]


def _describe_error(error: jsonschema.ValidationError, prefix: str) -> list[str]:
    base = _path(prefix, error.absolute_path)
    where = base or "(root)"
    kind = error.validator
    expected: Any = error.validator_value
    value: Any = error.instance
    if kind == "required":
        missing = [name for name in expected if isinstance(value, dict) and name not in value]
        named = [name for name in missing if repr(name) in error.message] or missing[:1]
        return [f"{_join(base, name)}: required field is missing" for name in named]
    if kind == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        return [f"{where}: expected {' or '.join(map(str, names))}, got {_json_type(value)}"]
    if kind == "enum":
        return [f"{where}: {_short(value)} is not one of {_short(expected)}"]
    if kind == "const":
        return [f"{where}: must be {_short(expected)}"]
    if kind in _BOUND_WORDS:
        return [f"{where}: {value} is {_BOUND_WORDS[kind]} {expected}"]
    if kind in _SIZE_WORDS:
        noun, words = _SIZE_WORDS[kind]
        return [f"{where}: has {len(value)} {noun}, {words} {expected}"]
    if kind == "additionalProperties" and isinstance(value, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
        extra = [n for n in value if n not in known and not any(re.search(p, n) for p in patterns)]
        return [f"{_join(base, name)}: unexpected field (additionalProperties is false)" for name in extra]
    if kind in ("anyOf", "oneOf") and isinstance(expected, list) and len(expected) == 1:
        return [line for sub in error.context or [] for line in _describe_error(sub, prefix)]
    if kind in ("anyOf", "oneOf"):
        return [f"{where}: matches none of the allowed forms"]
    if kind is None or error.schema is False:
        return [f"{where}: no value is allowed here"]
    return [f"{where}: {' '.join(error.message.split())[:200]}"]


def _path(prefix: str, parts: Any) -> str:
    path = prefix
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if name != "integer" and _TYPES[name](value):
            return name
        if name == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return name
    return type(value).__name__


def _join(path: str, name: Any) -> str:
    return f"{path}.{name}" if path else str(name)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


# --------------------------------------------------------------------------- retry and results


def retry_message(error: StructuredOutputError) -> dict[str, Any]:
    """The user message for the one retry: what was wrong, and a request for the corrected JSON only."""
    if error.problems:
        lines = ["Your previous JSON reply did not match the required schema:"]
        lines += [f"- {problem}" for problem in error.problems[:10]]
        if len(error.problems) > 10:
            lines.append(f"- … and {len(error.problems) - 10} more")
    else:
        lines = [f"Your previous reply could not be used: {error}."]
    if error.truncated:
        lines.append("Keep the JSON short enough to be complete.")
    lines.append("Reply again with only the corrected JSON object: no prose, no code fences.")
    return {"role": "user", "content": "\n".join(lines)}


def to_python(data: Any) -> Any:
    """A DataFrame when ``data`` is a table (records, or one key holding records); otherwise ``data``.

    Analysis work wants a DataFrame, and JSON mode can only return an object, so
    ``{"people": [{...}, ...]}`` is read as the list it wraps. Without pandas,
    or for anything that is not record-shaped, the data comes back unchanged.
    """
    wrapped = _single_list(data)
    records = wrapped[1] if wrapped is not None else data
    if not isinstance(records, list) or not records:
        return data
    if all(isinstance(item, BaseModel) for item in records):
        rows = [item.model_dump() for item in records]
    elif all(isinstance(item, dict) for item in records):
        rows = records
    else:
        return data
    try:
        import pandas as pd
    except ImportError:
        return data
    return pd.DataFrame(rows)


def schema_from_namespace(name: str, namespace: Mapping[str, Any]) -> Any:
    """The object ``--schema NAME`` names: a pydantic model class, a JSON-schema dict, or a type.

    Checked before the request is sent, so a typo costs nothing.
    """
    wanted = name.strip() if isinstance(name, str) else ""
    if not _DOTTED.fullmatch(wanted):
        raise SchemaLookupError(f"--schema expects a variable name, got {name!r}")
    root, *attributes = wanted.split(".")
    if root not in namespace:
        raise SchemaLookupError(f"--schema {wanted}: no variable named {root!r} in the notebook")
    value = namespace[root]
    for attribute in attributes:
        if attribute.startswith("_") or not hasattr(value, attribute):
            raise SchemaLookupError(f"--schema {wanted}: {_describe(value)} has no attribute {attribute!r}")
        value = getattr(value, attribute)
    if _is_model(value):
        return value
    if isinstance(value, BaseModel):
        raise SchemaLookupError(
            f"--schema {wanted} is a {type(value).__name__} instance; pass the class {type(value).__name__}"
        )
    if isinstance(value, dict):
        if not any(key in value for key in ("type", "properties", "$ref", "anyOf", "oneOf", "allOf", "enum")):
            raise SchemaLookupError(f"--schema {wanted} is a dict but not a JSON schema (no type or properties)")
        return value
    if isinstance(value, type) or typing.get_origin(value) is not None:
        json_schema_of(value)  # raises SchemaLookupError when pydantic cannot use it
        return value
    raise SchemaLookupError(
        f"--schema {wanted} is {_describe(value)}; expected a pydantic model class, a JSON-schema dict or a type"
    )


def _is_model(value: Any) -> typing.TypeGuard[type[BaseModel]]:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f"the type {value.__name__}"
    return f"a {type(value).__name__}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
