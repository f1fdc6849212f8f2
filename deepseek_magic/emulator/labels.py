"""Picking one of a key's allowed values, and other per-input variation, deterministically.

Offline demos of JSON mode and batch classification only make sense when the
emulated labels follow the input: a review that says "poor" should not come
back "positive" like every other row. So a label is, in order: the value the
prompt writes for the key (``sentiment: negative``), one the subject mentions
by name, a sentiment read from a small word list when the labels are
sentiment labels, and otherwise a pick hashed from the subject, so the same
input always gets the same label and different inputs spread over them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

_POSITIVE = frozenset(
    re.findall(
        r"[\w']+",
        "good great excellent love loved loves lovely perfect perfectly amazing awesome fantastic wonderful happy "
        "best nice fast reliable recommend recommended pleasant superb brilliant delicious friendly comfortable "
        "easy beautiful solid works worked impressive enjoy enjoyed helpful clean fresh",
    )
)
_NEGATIVE = frozenset(
    re.findall(
        r"[\w']+",
        "bad poor terrible awful hate hated horrible worst slow broken broke disappointing disappointed useless "
        "cold bitter rude dirty expensive noisy late boring difficult ugly faulty refund crashed crashes stopped "
        "waste weak cheap flimsy stale buggy never problem problems issue issues",
    )
)
_NEGATIONS = frozenset(re.findall(r"[\w']+", "not no never hardly isn't wasn't doesn't didn't don't can't won't"))
_SENTIMENTS = {
    "positive": 1,
    "pos": 1,
    "good": 1,
    "happy": 1,
    "negative": -1,
    "neg": -1,
    "bad": -1,
    "unhappy": -1,
    "neutral": 0,
    "mixed": 0,
}


def stable_hash(*parts: object) -> int:
    """A hash that is the same in every process (``hash()`` of a str is salted per process)."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode("utf-8", "replace"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def sentiment(text: str) -> tuple[int, int]:
    """(positive, negative) word counts in ``text``; a negation just before a word flips it."""
    positive = negative = 0
    previous = ""
    for word in re.findall(r"[a-z']+", text.lower()):
        if word in _POSITIVE or word in _NEGATIVE:
            good = word in _POSITIVE
            if previous in _NEGATIONS:
                good = not good
            positive, negative = (positive + 1, negative) if good else (positive, negative + 1)
        previous = word
    return positive, negative


def _sentiment_label(options: Sequence[Any], subject: str) -> Any | None:
    """The option matching the subject's sentiment, when every option is a sentiment label."""
    polarity = {option: _SENTIMENTS.get(str(option).strip().lower()) for option in options}
    if any(value is None for value in polarity.values()):
        return None
    positive, negative = sentiment(subject)
    if positive == negative == 0:
        return None
    if positive and negative:
        wanted = ["mixed", "neutral"]
    elif positive:
        wanted = ["positive", "pos", "good", "happy"]
    else:
        wanted = ["negative", "neg", "bad", "unhappy"]
    for name in wanted:
        for option in options:
            if str(option).strip().lower() == name:
                return option
    score = 1 if positive > negative else -1 if negative > positive else 0
    return next((option for option, value in polarity.items() if value == score), None)


def choose(options: Sequence[Any], subject: str, *, key: str = "", labelled: str | None = None) -> Any:
    """One of ``options`` for ``key``, following the subject (see the module docstring)."""
    if not options:
        return None
    if labelled is not None:
        for option in options:
            if str(option).lower() == labelled.lower():
                return option
    mentioned = [
        option
        for option in options
        if isinstance(option, str) and option and re.search(rf"(?i)(?<!\w){re.escape(option)}(?!\w)", subject)
    ]
    if len(mentioned) == 1:
        return mentioned[0]
    by_sentiment = _sentiment_label(options, subject)
    if by_sentiment is not None:
        return by_sentiment
    if mentioned:
        return mentioned[0]
    return options[stable_hash(subject, key) % len(options)]
