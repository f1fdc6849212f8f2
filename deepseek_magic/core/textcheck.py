"""Finding text that cannot be sent: a lone surrogate cannot be encoded as UTF-8.

Why its own module: such text makes the JSON encoder fail deep inside httpx
with a 100-line ``UnicodeEncodeError``. Checked before sending (and again when
encoding fails), it becomes one line saying what is wrong and where.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["bad_text_problem", "surrogate_problem"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_problem(text: str, where: str) -> str | None:
    """One line describing the first lone surrogate in ``text``, or ``None`` when it is clean."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    return (
        f"{where} holds a lone surrogate (U+{code:04X}) at character {found.start()}, "
        "which cannot be sent as UTF-8 (text decoded with errors='surrogateescape'?)"
    )


def bad_text_problem(value: Any, where: str = "the request") -> str | None:
    """The first lone surrogate anywhere in a JSON-like ``value`` (keys included), with its path."""
    if isinstance(value, str):
        return surrogate_problem(value, where)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = bad_text_problem(key, f"a key of {where}") if isinstance(key, str) else None
            problem = problem or bad_text_problem(item, f"{where}.{key}")
            if problem:
                return problem
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = bad_text_problem(item, f"{where}[{index}]")
            if problem:
                return problem
    return None
