"""Session files: JSON Lines written a turn at a time, read back through pydantic models.

Why JSON Lines: a long session is written and read one turn per line, so
neither side ever holds the whole file as one string next to its parse, and
a file cut short is noticed (the first line says how many turns follow).
The format is::

    {"format": "deepseek-magic session", "version": 2, "name": …, "system": …, "settings": {…}, "turns": 2}
    {"key": "cell-1", "prompt": …, "reply": {…}, …}
    {"key": "cell-2", …}

Every line is validated by a strict model (:mod:`deepseek_magic.core.records`
for the reply), so nothing half-valid loads and every loaded field has the
type the code relies on. Older files — version 1, one JSON object with the
turns inline — and the same object as :meth:`Session.to_dict` gives it still
load (read whole; the size bound applies to both).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from deepseek_magic.conversation.turns import Turn
from deepseek_magic.core.errors import DeepSeekError
from deepseek_magic.core.files import FileKindError, open_regular
from deepseek_magic.core.records import Count, ReplyRecord, SavedRecord, one_line

FORMAT = "deepseek-magic session"
SESSION_FILE_VERSION = 2
#: Largest session file :meth:`Session.load` reads (a 400-turn, million-token session is a few megabytes).
MAX_SESSION_FILE_BYTES = 256 * 1024 * 1024
#: Largest timestamp a saved file may hold; anything above is not a real time.
MAX_SAVED_NUMBER = 10**13
#: Settings a session file carries: how to generate, not where to connect or with what key.
SAVED_SETTINGS = (
    "model",
    "thinking",
    "effort",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "json_mode",
    "user_id",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "n",
    "stream",
)


class SessionFileError(DeepSeekError):
    """A session file could not be read; nothing was loaded."""


class TurnRecord(SavedRecord):
    """One line after the header: a turn as :meth:`Turn.to_dict` wrote it."""

    key: str
    prompt: str
    reply: ReplyRecord
    system: str | None = None
    model: str = ""
    provider: str = ""
    status: Literal["complete", "partial", "interrupted"] = "complete"
    created: Annotated[float, Field(ge=0, le=MAX_SAVED_NUMBER, allow_inf_nan=False)] = 0.0
    intermediate: list[dict[str, Any]] = Field(default_factory=list)

    def to_turn(self) -> Turn:
        return Turn(
            key=self.key,
            prompt=self.prompt,
            reply=self.reply.to_reply(),
            system=self.system,
            model=self.model,
            provider=self.provider,
            status=self.status,
            created=float(self.created),
            intermediate=[dict(message) for message in self.intermediate],
        )


class HeaderRecord(SavedRecord):
    """The first line: who the session is, and how many turn lines follow."""

    format: Literal["deepseek-magic session"]
    version: Literal[2]
    name: str = "default"
    system: str | None = None
    settings: dict[str, Any] | None = None
    turns: Count


class DocumentRecord(SavedRecord):
    """A whole session as one JSON object: version 1 files, and :meth:`Session.to_dict`'s shape."""

    format: Literal["deepseek-magic session"] | None = None
    version: Literal[1, 2]
    name: str = "default"
    system: str | None = None
    settings: dict[str, Any] | None = None
    turns: list[TurnRecord]


@dataclass
class SavedSession:
    """What a session file holds, validated: the session is built from it by :meth:`Session.load`."""

    name: str
    system: str | None
    settings: dict[str, Any]
    turns: list[Turn]


def header(name: str, system: str | None, settings: dict[str, Any], turns: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": SESSION_FILE_VERSION,
        "name": name,
        "system": system,
        "settings": settings,
        "turns": turns,
    }


#: Characters ``str.splitlines`` (and other JSON Lines readers) take as line ends that ``json.dumps`` leaves raw.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _line(value: dict[str, Any]) -> str:
    """One JSON value on exactly one line, by any reader's idea of a line."""
    return json.dumps(value, ensure_ascii=False).translate(_LINE_BREAKS) + "\n"


def session_file_lines(head: dict[str, Any], turns: Iterable[Turn]) -> Iterator[str]:
    """The file, a line at a time: the header, then one turn per line."""
    yield _line(head)
    for turn in turns:
        yield _line(turn.to_dict())


def read_session_file(source: Path) -> SavedSession:
    """The validated contents of ``source``; raises :class:`SessionFileError` (one line) for a bad file.

    ``FileNotFoundError`` and :class:`~deepseek_magic.core.files.FileKindError`
    (a FIFO, device or directory) are left to the caller, which words them.
    """
    try:
        with open_regular(source) as lines:  # never blocks on a FIFO; refuses devices and directories
            size = os.fstat(lines.fileno()).st_size
            if size > MAX_SESSION_FILE_BYTES:
                raise SessionFileError(
                    f"{source} is {size:,} bytes, above the {MAX_SESSION_FILE_BYTES:,}-byte limit for session files"
                )
            first = lines.readline(MAX_SESSION_FILE_BYTES)
            head = _header_of(first)
            if head is None:
                lines.seek(0)
                return _whole_document(_loads(lines.read()))
            turns = []
            for number in range(1, head.turns + 1):
                line = lines.readline(MAX_SESSION_FILE_BYTES)
                if not line.strip():
                    raise ValueError(f"the file ends after {number - 1} of its {head.turns} turns")
                turns.append(_turn(line, number))
            if any(rest.strip() for rest in lines):  # a line at a time: read(n) would allocate n bytes up front
                raise ValueError(f"unexpected text after its {head.turns} turns")
    except (SessionFileError, FileNotFoundError, FileKindError):
        raise
    except ValidationError as exc:
        raise SessionFileError(f"{source} is not a valid session file: {one_line(exc)}") from None
    except (OSError, ValueError) as exc:
        raise SessionFileError(f"{source} is not a readable session file: {exc}") from None
    return SavedSession(head.name, head.system, _saved_settings(head.settings), turns)


def _header_of(first: str) -> HeaderRecord | None:
    """The JSON Lines header, or ``None`` when the first line is not one (an older, whole-document file)."""
    try:
        raw = _loads(first)
    except ValueError:
        return None
    if not isinstance(raw, dict) or "format" not in raw or isinstance(raw.get("turns"), list):
        return None
    return HeaderRecord.model_validate(raw)


def _turn(line: str, number: int) -> Turn:
    try:
        return TurnRecord.model_validate(_loads(line)).to_turn()
    except ValidationError as exc:
        raise ValueError(f"turn {number}: {one_line(exc)}") from None
    except ValueError as exc:
        raise ValueError(f"turn {number}: {exc}") from None


def _whole_document(raw: Any) -> SavedSession:
    document = DocumentRecord.model_validate(raw)
    turns = [record.to_turn() for record in document.turns]
    return SavedSession(document.name, document.system, _saved_settings(document.settings), turns)


def _saved_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Only generation settings: where to connect and the key never come from a file."""
    return {name: value for name, value in (settings or {}).items() if name in SAVED_SETTINGS}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a session file may hold")


def _loads(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity and turns too-deep nesting into ``ValueError``."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("it is nested too deeply to be a session file") from None


__all__ = [
    "FORMAT",
    "MAX_SESSION_FILE_BYTES",
    "SAVED_SETTINGS",
    "SESSION_FILE_VERSION",
    "DocumentRecord",
    "HeaderRecord",
    "SavedSession",
    "SessionFileError",
    "TurnRecord",
    "header",
    "read_session_file",
    "session_file_lines",
]
