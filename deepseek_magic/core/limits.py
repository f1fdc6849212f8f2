"""Parameter limits documented by DeepSeek and its resellers, kept as data.

One table serves two readers: the settings model (which refuses a bad value
before anything is sent) and the emulator (which answers a bad value with the
400 DeepSeek would send). Keeping the numbers in one place means the two can
never disagree. Sources: shared/reference/deepseek-protocol.md §1.2 and
shared/reference/providers.md.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

#: Inclusive numeric ranges, by request field name.
RANGES: Final[dict[str, tuple[float, float]]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "max_tokens": (1, 384_000),
    "top_logprobs": (0, 20),
    "n": (1, 8),
    "frequency_penalty": (-2, 2),
    "presence_penalty": (-2, 2),
}

MAX_STOP_SEQUENCES: Final = 16
MAX_TOOLS: Final = 128
USER_ID_MAX_LENGTH: Final = 512
USER_ID_PATTERN: Final = re.compile(r"^[a-zA-Z0-9\-_]+$")
LOGIT_BIAS_RANGE: Final[tuple[int, int]] = (-100, 100)
TOOL_NAME_PATTERN: Final = re.compile(r"^[a-zA-Z0-9_\-]{1,64}$")

#: Reasoning effort: the one list (settings type, ``--effort`` choices, the form, the emulator).
Effort = Literal["low", "medium", "high", "max"]
EFFORTS: Final[tuple[str, ...]] = get_args(Effort)
THINKING_TOOL_CHOICES: Final = ("auto", "none")


def describe_range(field: str) -> str:
    """Human wording of a field's allowed range, e.g. ``"between 0 and 2"``."""
    low, high = RANGES[field]
    return f"between {_fmt(low)} and {_fmt(high)}"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def range_problem(field: str, value: float) -> str | None:
    """Why ``value`` is out of range for ``field``, or ``None`` when it is fine."""
    low, high = RANGES[field]
    if low <= value <= high:
        return None
    return f"{field} must be {describe_range(field)}, got {value!r}"


def stop_problem(stop: list[str]) -> str | None:
    """Why a stop list is refused, or ``None``."""
    if len(stop) > MAX_STOP_SEQUENCES:
        return f"stop takes at most {MAX_STOP_SEQUENCES} sequences, got {len(stop)}"
    return None


def user_id_problem(user_id: str) -> str | None:
    """Why a ``user_id`` is refused, or ``None``."""
    if len(user_id) > USER_ID_MAX_LENGTH:
        return f"user_id must be at most {USER_ID_MAX_LENGTH} characters, got {len(user_id)}"
    if not USER_ID_PATTERN.match(user_id):
        return "user_id may only contain letters, digits, '-' and '_'"
    return None


def logit_bias_problem(bias: dict[str, float]) -> str | None:
    """Why a ``logit_bias`` map is refused, or ``None``."""
    low, high = LOGIT_BIAS_RANGE
    for token, value in bias.items():
        if not low <= value <= high:
            return f"logit_bias values must be between {low} and {high}, got {value!r} for token {token!r}"
    return None


def tools_problem(tools: list[dict[str, object]]) -> str | None:
    """Why a tools list is refused (count and function names), or ``None``."""
    if len(tools) > MAX_TOOLS:
        return f"tools takes at most {MAX_TOOLS} functions, got {len(tools)}"
    for tool in tools:
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
            return f"tool name {name!r} must be 1-64 letters, digits, '_' or '-'"
    return None
