"""Emulated answers to "fix this error" and "give me the code": a fenced Python block, for the offline demo.

A fix request is recognised by the word "fix" and a traceback in a text
block right after a Python block (the failing cell); the answer names the
error and offers a stand-in fix: the cell wrapped so the error is caught and
printed (a syntax error's line is commented out instead). A code request is
recognised by its ask for a fenced ```` ```python ```` block; the answer is a
short placeholder program naming the request's key terms. Both are marked
``[emulated]`` and deterministic, like every emulated reply.
"""

from __future__ import annotations

import builtins
import itertools
import re

from deepseek_magic.emulator.prompt import key_terms, one_line

__all__ = ["code_reply"]

_WANTS_CODE = re.compile(r"(?i)fenced\s+`{3}\s*python\b[^\n]*\bblock")
_FIX = re.compile(r"(?i)\bfix\b")
_FENCE = re.compile(r"(?ms)^(`{3,})([^\n`]*)\n(.*?)\n\1[ \t]*$")
_ERROR_LINE = re.compile(
    r"(?m)^(?P<name>[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning|Iteration))(?::[ \t]*(?P<message>.*))?$"
)
_LINE_NUMBER = re.compile(r"line (\d+)")


def code_reply(text: str, model: str, mode: str) -> str | None:
    """The emulated answer to ``text`` when it asks for a fix or for code, else ``None``."""
    if _FIX.search(text):
        found = _failing_cell(text)
        if found is not None:
            return _fix_answer(*found, model=model, mode=mode)
    if _WANTS_CODE.search(text):
        return _code_answer(text, model=model, mode=mode)
    return None


def _failing_cell(text: str) -> tuple[str, str, str, str] | None:
    """(cell source, error name, error message, traceback) of the last Python block followed by a traceback."""
    fences = [(match.group(2).strip().lower(), match.group(3)) for match in _FENCE.finditer(text)]
    found = None
    for (language, source), (_, body) in itertools.pairwise(fences):
        errors = list(_ERROR_LINE.finditer(body))
        if language in ("python", "py", "") and errors:
            last = errors[-1]
            found = (source, last.group("name"), (last.group("message") or "").strip(), body)
    return found


def _fix_answer(source: str, name: str, message: str, traceback: str, *, model: str, mode: str) -> str:
    headline = one_line(f"{name}: {message}" if message else name, 160).replace("`", "'")
    if name.endswith(("SyntaxError", "IndentationError", "TabError")):
        code = _comment_out(source, traceback, name)
        how = "comments out the line the parser stopped at"
    elif source.lstrip().startswith("%%"):
        code = f"# [emulated] stand-in fix for {name}: a cell magic cannot be wrapped; check its input\n{source}"
        how = "leaves the cell magic as it was"
    else:
        code = _guarded(source, name)
        how = "catches the error and prints it, so the cell runs"
    return "\n".join(
        [
            f"[emulated] **{model}** ({mode}) read the failing cell and its traceback.",
            "",
            f"**The error:** `{headline}`, the last line of the traceback.",
            "",
            "**Why:** the emulator does not read code, so it cannot tell; a real model would explain the cause "
            f"here. Its stand-in fix {how}. Review it before you run it.",
            "",
            "```python",
            code,
            "```",
        ]
    )


def _guarded(source: str, name: str) -> str:
    caught = name if name in vars(builtins) else "Exception"  # a dotted or library type may not be imported
    body = [f"    {line}" if line.strip() else "" for line in source.strip("\n").split("\n")] or ["    pass"]
    return "\n".join(
        [
            f"# [emulated] stand-in fix for {name}: the cell, with the error caught",
            "try:",
            *body,
            f"except {caught} as error:",
            f'    print("{caught} caught:", error)',
        ]
    )


def _comment_out(source: str, traceback: str, name: str) -> str:
    lines = source.strip("\n").split("\n")
    numbers = [int(n) for n in _LINE_NUMBER.findall(traceback)]
    target = numbers[-1] if numbers and 0 < numbers[-1] <= len(lines) else len(lines)
    lines[target - 1] = f"# {lines[target - 1]}  # [emulated] commented out: {name}"
    return "\n".join(lines)


def _code_answer(text: str, *, model: str, mode: str) -> str:
    prompt = text.rsplit("\n---\n", 1)[-1]  # after a notebook context block, the request itself
    prompt = _WANTS_CODE.split(prompt)[0]
    prompt = re.sub(r"(?i)give the code as one complete\s*$", "", prompt.strip()).strip()
    first_line = next((line for line in prompt.split("\n") if line.strip()), "")
    topic = one_line(first_line, 80).replace("`", "'") or "your request"
    terms = ", ".join(key_terms(prompt, 4)) or "none"
    return "\n".join(
        [
            f"[emulated] **{model}** ({mode}): code for “{topic}”.",
            "",
            "A real model would write it; the emulator offers a placeholder that runs.",
            "",
            "```python",
            f"# [emulated] code for: {topic}",
            f"# key terms: {terms}",
            'print("hello from the DeepSeek emulator")',
            "```",
        ]
    )
