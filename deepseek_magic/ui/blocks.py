"""Cutting a growing Markdown answer into finished blocks, incrementally.

A streaming view renders (and sends) each finished block once and keeps only
the unfinished tail open, so its traffic grows with the answer, not with its
square. :class:`BlockSplitter` remembers where it stopped scanning, so each
delta costs time in proportion to the delta (plus the one unfinished line),
not to the open block: a 2,000-row table is one block until it ends, and
re-scanning it on every update would make the kernel's work quadratic.

A block is finished only once the line that starts the next one has arrived,
and a cut is made only where rendering the pieces apart gives the same HTML as
rendering them together:

* a blank line followed by a line that is not indented (an indented line may
  continue a list item, or be code);
* before and after a code fence that starts at column 0;
* before and after an ATX heading at column 0;
* between the items of a list that starts at column 0 (an LLM's tight lists
  have no blank lines, and a whole list is often most of an answer).

Nothing is ever cut inside a code fence, whatever its indentation. Blocks come
without their trailing newlines; the tail starts where the last cut was made.
"""

from __future__ import annotations

import re

_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_ATX_HEADING = re.compile(r"^#{1,6}(?:[ \t]|$)")
_LIST_MARKER = re.compile(r"^(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")

Fence = tuple[str, int, bool]  # (fence character, fence length, opened at column 0)


def fence_opening(line: str) -> Fence | None:
    """(fence char, fence length, at column 0) when ``line`` opens a code fence."""
    match = _FENCE_OPEN.match(line)
    if match is None:
        return None
    indent, fence, info = match.groups()
    if fence[0] == "`" and "`" in info:  # ```x``` on one line is an inline code span, not a fence
        return None
    return fence[0], len(fence), not indent


def _closes(line: str, fence: Fence) -> bool:
    stripped = line.strip()
    char, length, _ = fence
    return len(stripped) >= length and stripped == char * len(stripped)


class BlockSplitter:
    """Feed it the answer's deltas; it returns the blocks each delta finished and keeps the tail."""

    __slots__ = ("_blank_before", "_fence", "_has_content", "_kind", "_offset", "_text")

    def __init__(self) -> None:
        self._text = ""  # the tail: from where the open block starts
        self._offset = 0  # in the tail: where the first line not yet scanned starts
        self._kind = ""  # "list", "heading" or "" for the open block
        self._has_content = False
        self._blank_before = False
        self._fence: Fence | None = None

    @property
    def tail(self) -> str:
        """The unfinished rest of the answer (``""`` right after a finished fence)."""
        return self._text

    def feed(self, delta: str) -> list[str]:
        """Take ``delta`` in; the blocks it finished, in order."""
        text = self._text + delta
        blocks: list[str] = []
        start = 0
        offset = self._offset
        kind, has_content, blank_before, fence = self._kind, self._has_content, self._blank_before, self._fence
        length = len(text)
        while offset < length:
            end = text.find("\n", offset)
            if end < 0:
                # An unfinished line belongs to the tail; its first character already says whether a blank
                # line before it ended the block (what kind of line it is may still change).
                if has_content and blank_before and fence is None and not text[offset].isspace():
                    blocks.append(text[start:offset].rstrip("\n"))
                    start, has_content = offset, False
                break
            line = text[offset:end]
            following = end + 1
            if fence is not None:
                if _closes(line, fence):
                    at_column_0 = fence[2]
                    fence = None
                    if at_column_0:
                        blocks.append(text[start:following].rstrip("\n"))
                        start, kind, has_content, blank_before = following, "", False, False
                offset = following
                continue
            if not line.strip():
                blank_before = True
                offset = following
                continue
            indented = line[0] in " \t"
            opening = fence_opening(line)
            heading = not indented and _ATX_HEADING.match(line) is not None
            item = not indented and _LIST_MARKER.match(line) is not None
            if has_content and (
                (blank_before and not indented)
                or (opening is not None and opening[2])
                or heading
                or kind == "heading"
                or (item and kind == "list")
            ):
                blocks.append(text[start:offset].rstrip("\n"))
                start, has_content = offset, False
            if not has_content:
                kind = "heading" if heading else "list" if item else ""
            has_content = True
            blank_before = False
            fence = opening
            offset = following
        self._text = text[start:]
        self._offset = offset - start
        self._kind, self._has_content, self._blank_before, self._fence = kind, has_content, blank_before, fence
        return blocks


def split_blocks(text: str) -> tuple[list[str], str]:
    """The finished Markdown blocks of a growing ``text``, and the unfinished tail (see :class:`BlockSplitter`)."""
    splitter = BlockSplitter()
    blocks = splitter.feed(text)
    return blocks, splitter.tail
