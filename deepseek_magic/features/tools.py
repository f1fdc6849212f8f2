"""Python functions as tools the model may call.

The JSON schema of a tool comes from its signature, type hints and docstring
through pydantic, so a plain typed function is enough (``@tool`` only
renames or re-describes one). Only the functions the user passed can run:
an unknown name from the model is answered with an error message, never
looked up anywhere else. A function that raises sends its error text back as
the result, so the model can correct itself and the loop goes on.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PydanticUserError, ValidationError, create_model

from deepseek_magic.core.errors import ConfigError
from deepseek_magic.core.events import ToolCall

#: Characters of a tool result sent back to the model; longer results are cut with a note.
RESULT_CAP = 20_000
DEFAULT_ROUNDS = 8
_NAME = re.compile(r"^[a-zA-Z0-9_\-]{1,64}$")


def tool(name: str | None = None, description: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Optional decorator: give a tool another name or description than its own."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        wrapper.__deepseek_tool__ = {"name": name, "description": description}  # type: ignore[attr-defined]
        return wrapper

    return mark


@dataclass
class ToolResult:
    """What one call returned (as sent back), how long it took, and whether it failed."""

    call: ToolCall
    content: str
    seconds: float
    failed: bool = False


class Tool:
    """One callable with its argument model and JSON schema."""

    def __init__(self, func: Callable[..., Any]) -> None:
        if not callable(func):
            raise ConfigError(f"{func!r} is not callable, so it cannot be a tool")
        marks = getattr(func, "__deepseek_tool__", {}) or {}
        self.func = func
        self.name: str = str(marks.get("name") or getattr(func, "__name__", ""))
        if not _NAME.match(self.name):
            raise ConfigError(f"tool name {self.name!r} must be 1-64 letters, digits, '_' or '-'")
        summary, params = _parse_docstring(inspect.getdoc(func) or "")
        self.description: str = str(marks.get("description") or summary or self.name)
        self.arguments = _argument_model(func, params)
        # Built now, so a parameter the model could never fill is one line before anything is sent.
        self._parameters = _parameters_schema(self.name, self.arguments)

    def schema(self) -> dict[str, Any]:
        """The OpenAI/DeepSeek ``tools[]`` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self._parameters},
        }

    def run(self, call: ToolCall) -> ToolResult:
        """Call the function with the model's arguments; errors become the result text.

        An ``async def`` tool is run to completion (in a helper thread when this
        thread already runs an event loop, as a Jupyter kernel does).
        """
        started = time.monotonic()
        try:
            value = self.func(**self._arguments(call))
            if inspect.isawaitable(value):
                value = run_coroutine(value)
            return ToolResult(call, encode_result(value), time.monotonic() - started)
        except Exception as exc:
            return self._failure(call, exc, started)

    async def arun(self, call: ToolCall) -> ToolResult:
        """Async twin of :meth:`run`: an ``async def`` tool is awaited on the running loop."""
        started = time.monotonic()
        try:
            value = self.func(**self._arguments(call))
            if inspect.isawaitable(value):
                value = await value
            return ToolResult(call, encode_result(value), time.monotonic() - started)
        except Exception as exc:
            return self._failure(call, exc, started)

    def _arguments(self, call: ToolCall) -> dict[str, Any]:
        raw = json.loads(call.arguments) if call.arguments.strip() else {}
        if not isinstance(raw, dict):
            raise ValueError("arguments must be a JSON object")
        parsed = self.arguments.model_validate(raw)
        return {name: getattr(parsed, name) for name in type(parsed).model_fields}

    def _failure(self, call: ToolCall, exc: Exception, started: float) -> ToolResult:
        """The error text sent back to the model, so it can correct itself and the loop goes on."""
        if isinstance(exc, ValidationError):
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            text = f"Error: invalid arguments for {self.name}: {problems}"
        elif isinstance(exc, ValueError):
            text = f"Error: could not read the arguments for {self.name}: {exc}"
        else:  # the user's function failed: tell the model, keep going
            text = f"Error: {self.name} raised {type(exc).__name__}: {exc}"
        return ToolResult(call, text, time.monotonic() - started, failed=True)


def run_coroutine(awaitable: Any) -> Any:
    """Run an awaitable to completion from synchronous code.

    With no loop running in this thread, ``asyncio.run``; inside a running
    loop (a Jupyter kernel's cell) in a helper thread, joined in short slices
    so the kernel's Interrupt still lands here.
    """

    async def wrapped() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrapped())
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(wrapped())
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc

    helper = threading.Thread(target=target, name="deepseek-magic-async-tool", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


class ToolBox:
    """The tools of one request, by name."""

    def __init__(self, funcs: Iterable[Callable[..., Any]], *, rounds: int = DEFAULT_ROUNDS) -> None:
        self.tools = {t.name: t for t in (Tool(func) for func in funcs)}
        self.rounds = rounds

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    def run(self, call: ToolCall) -> ToolResult:
        found = self.tools.get(call.name)
        if found is None:
            names = ", ".join(sorted(self.tools)) or "none"
            return ToolResult(call, f"Error: there is no tool named {call.name!r}; available: {names}", 0.0, True)
        return found.run(call)

    async def arun(self, call: ToolCall) -> ToolResult:
        """Async twin of :meth:`run`."""
        found = self.tools.get(call.name)
        if found is None:
            return self.run(call)
        return await found.arun(call)


def encode_result(value: Any) -> str:
    """A tool's return value as the text sent back: JSON where possible, capped in size."""
    if isinstance(value, str):
        text = value
    else:
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict) and hasattr(value, "shape"):  # a DataFrame/Series: records, not a repr
            try:
                value = value.to_dict(orient="records") if value.ndim == 2 else value.to_dict()
            except TypeError:
                value = str(value)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > RESULT_CAP:
        cut = len(text) - RESULT_CAP
        text = text[:RESULT_CAP] + f"\n… [truncated: {cut:,} more characters not shown]"
    return text


def _argument_model(func: Callable[..., Any], descriptions: dict[str, str]) -> type[BaseModel]:
    signature = inspect.signature(func)
    try:
        hints = inspect.get_annotations(func, eval_str=True)
    except Exception:  # unresolvable annotations: fall back to Any
        hints = {}
    fields: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[name] = (annotation, Field(default, description=descriptions.get(name)))
    config = ConfigDict(arbitrary_types_allowed=True)
    return create_model(f"{getattr(func, '__name__', 'tool')}_arguments", __config__=config, **fields)


def _parameters_schema(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a tool's arguments, or one line naming the parameter that has none."""
    try:
        return _clean(model.model_json_schema())
    except (PydanticUserError, TypeError, ValueError):
        pass
    for field_name, info in model.model_fields.items():
        fields: dict[str, Any] = {field_name: (info.annotation, ...)}
        single = create_model("probe", __config__=ConfigDict(arbitrary_types_allowed=True), **fields)
        try:
            single.model_json_schema()
        except (PydanticUserError, TypeError, ValueError):
            kind = getattr(info.annotation, "__name__", None) or str(info.annotation)
            raise ConfigError(
                f"tool {name}: parameter {field_name!r} is a {kind}, which has no JSON schema, so the model "
                "could not fill it; take plain values (str, int, float, bool, list, dict, a pydantic model) instead"
            ) from None
    raise ConfigError(f"tool {name}: its parameters have no JSON schema")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary paragraph and per-parameter descriptions (Google or Sphinx style)."""
    summary = doc.split("\n\n", 1)[0].strip().replace("\n", " ")
    params: dict[str, str] = {}
    for match in re.finditer(r"(?m)^\s*:param\s+(?:\w+\s+)?(\w+):\s*(.+)$", doc):
        params[match.group(1)] = match.group(2).strip()
    section = re.search(r"(?ms)^\s*(?:Args|Arguments|Parameters):\s*\n(.*?)(?:\n\s*\n|\Z)", doc)
    if section:
        for match in re.finditer(r"(?m)^\s*(\w+)(?:\s*\([^)]*\))?\s*:\s*(.+)$", section.group(1)):
            params.setdefault(match.group(1), match.group(2).strip())
    return summary, params


def _clean(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated titles: noise for the model, and tokens on every request."""
    schema = {k: v for k, v in schema.items() if k != "title"}
    properties = schema.get("properties")
    if isinstance(properties, dict):
        schema["properties"] = {
            name: {k: v for k, v in prop.items() if k != "title"} if isinstance(prop, dict) else prop
            for name, prop in properties.items()
        }
    return schema
