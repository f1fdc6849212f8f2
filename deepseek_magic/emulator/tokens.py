"""A tiny deterministic tokenizer.

The emulator needs token counts that agree with what it streams: one emitted
delta is one token, so usage figures always match the number of chunks a client
sees.  A regex split (a word piece of up to ten characters, or one punctuation
mark, each with its leading whitespace) is close enough to a real BPE for
pacing and usage, and the pieces always join back to the original text.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\s*(?:\w{1,10}|[^\w\s])|\s+")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into pieces whose concatenation is exactly ``text``."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Number of tokens :func:`tokenize` would produce for ``text``."""
    return len(tokenize(text))
