"""What a JSON-mode prompt asks for, read from its prose: keys (with their allowed values) and a count.

"Classify this review as JSON with keys sentiment (positive/negative/mixed)
and topic: …" asks for an object with two keys, the first one of three labels;
"a JSON list of 3 records with keys a, b" asks for three such objects. The
parser reads the key list as a small grammar (name, optional parenthesis, a
separator, the next name) and stops at the first thing that is not part of
it, so the text after the list (the review itself) is never taken for keys or
labels. It also reports where the list was, so the caller can judge values by
the rest of the prompt (the *subject*) without the labels it just offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The words that introduce a key list ("with keys a, b", "fields: x and y", "columns name, dtype").
_INTRO = re.compile(r"(?i)\b(?:keys|fields|properties|attributes|columns)\b")
_FILLER = re.compile(r"(?i)(?:[ \t]*(?:named|called|like|such as|are|with|the|being)\b|[ \t]*[:=])*[ \t]*")
_NAME = re.compile(r"[`\"']?([A-Za-z_]\w{0,40})[`\"']?")
_SEPARATOR = re.compile(r"(?i)[ \t]*(?:,[ \t]*(?:and|or)\b|,|\band\b|\bor\b|&)[ \t]*")
_PAREN = re.compile(r"[ \t]*\(([^()\n]{1,200})\)")
_CHOICE_SPLIT = re.compile(r"(?i)\s*(?:/|\||,|\bor\b)\s*")
_ONE_OF = re.compile(r"(?i)^\s*(?:one of|either|any of|values?|e\.g\.)\s*:?\s*")
_KEYS_BEFORE = re.compile(r"((?:[`\"']\w+[`\"']\s*(?:,|\band\b|\bor\b)?\s*){2,})(?:keys|fields|properties)\b")
#: Words that end a key list instead of naming a key ("columns with keys a, b": "keys" is no key).
_NOT_NAMES = frozenset(
    re.findall(r"\w+", "and or for from of in to as keys fields properties attributes columns that which")
)
#: Type words a parenthesis can name: ``age (integer)``.
TYPE_WORDS = {
    "int": "integer",
    "integer": "integer",
    "number": "number",
    "float": "number",
    "decimal": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "string": "string",
    "str": "string",
    "text": "string",
    "list": "array",
    "array": "array",
}
_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        re.findall(
            r"\w+",
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
            "seventeen eighteen nineteen twenty",
        )
    )
}
_COUNT = r"(\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")"
_ADJECTIVES = r"(?:(?:more|different|distinct|random|sample|example|short|fake|fictional|json|new|made-up)\s+)*"
_COUNTED = (
    re.compile(rf"(?i)\b(?:list|array|table)\s+of\s+{_COUNT}\s+{_ADJECTIVES}([A-Za-z]\w*)"),
    re.compile(
        rf"(?i)\b{_COUNT}\s+{_ADJECTIVES}([A-Za-z]\w*s|people|children)\b(?=[^.\n]*\b(?:keys|fields|properties|json)\b)"
    ),
    re.compile(
        rf"(?i)\b(?:give|list|make|generate|create|return|produce|invent|suggest|name|write)\s+(?:me\s+)?"
        rf"{_COUNT}\s+{_ADJECTIVES}([A-Za-z]\w*)"
    ),
)
#: At most this many records in one emulated reply.
MAX_COUNT = 50


@dataclass(frozen=True)
class KeySpec:
    """One key the prompt asks for: its name, the values it may take, a type named in prose."""

    name: str
    choices: tuple[str, ...] = ()
    type: str | None = None


@dataclass(frozen=True)
class Counted:
    """ "3 records": how many, of what (the noun, used as the key holding the list), and where it was written."""

    count: int
    noun: str
    span: tuple[int, int]


def requested_keys(text: str) -> tuple[list[KeySpec], tuple[int, int] | None]:
    """The keys a prompt asks for, and the span of ``text`` that listed them (``None`` when there is none)."""
    match = _KEYS_BEFORE.search(text)
    if match:
        names = list(dict.fromkeys(re.findall(r"[`\"'](\w+)[`\"']", match.group(1))))
        return [KeySpec(name) for name in names[:20]], match.span()
    for intro in _INTRO.finditer(text):
        keys, end = _key_list(text, intro.end())
        if keys:
            return keys, (intro.start(), end)
    return [], None


def _key_list(text: str, start: int) -> tuple[list[KeySpec], int]:
    """Parse ``name [(choices)] (sep name [(choices)])*`` from ``start``; returns the keys and where it ended."""
    filler = _FILLER.match(text, start)
    position = filler.end() if filler else start
    keys: list[KeySpec] = []
    end = position
    while len(keys) < 20:
        name = _NAME.match(text, position)
        if not name or name.group(1).lower() in _NOT_NAMES:
            break
        position = name.end()
        choices: tuple[str, ...] = ()
        kind: str | None = None
        paren = _PAREN.match(text, position)
        if paren:
            choices, kind = _parenthesis(paren.group(1))
            position = paren.end()
        if name.group(1) not in {key.name for key in keys}:
            keys.append(KeySpec(name.group(1), choices, kind))
        end = position
        separator = _SEPARATOR.match(text, position)
        if not separator or separator.end() == position:
            break
        position = separator.end()
    return keys, end


def _parenthesis(inside: str) -> tuple[tuple[str, ...], str | None]:
    """``(x/y/z)`` → choices; ``(integer)`` → a type; anything else (``(in USD)``) → nothing."""
    body = _ONE_OF.sub("", inside.strip())
    parts = [part.strip(" \"'`.") for part in _CHOICE_SPLIT.split(body)]
    parts = [part for part in parts if part]
    if len(parts) >= 2 and all(len(part.split()) <= 3 and len(part) <= 40 for part in parts):
        return tuple(dict.fromkeys(parts)), None
    if len(parts) == 1 and parts[0].lower() in TYPE_WORDS:
        return (), TYPE_WORDS[parts[0].lower()]
    return (), None


def counted(text: str) -> Counted | None:
    """ "a list of 3 records", "five cities with keys …", "give me 4 examples": how many of what."""
    for pattern in _COUNTED:
        match = pattern.search(text)
        if match is None:
            continue
        raw = match.group(1).lower()
        count = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        if 1 <= count <= MAX_COUNT:
            return Counted(count, match.group(2).lower(), match.span())
    return None


def without(text: str, *spans: tuple[int, int] | None) -> str:
    """``text`` with ``spans`` cut out (what is left is the subject the values are judged by)."""
    kept, cursor = [], 0
    for span in sorted(span for span in spans if span is not None):
        if span[0] >= cursor:
            kept.append(text[cursor : span[0]])
            cursor = span[1]
    kept.append(text[cursor:])
    return " ".join(part.strip() for part in kept if part.strip())
