"""Splitting a magic's option line into words: shared by the cell magic and the ``%deepseek`` subcommands.

Why its own module: ``commands`` (the subcommands) sits below ``magics`` and
needs the same splitting; taking it from ``magics`` made the two import each
other.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Iterable

from IPython.core.error import UsageError


def parser_tokens(line: str) -> list[str]:
    """The line split like a POSIX shell: quotes group words and are removed."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"could not read the options: {exc}") from None


__all__ = ["did_you_mean", "parser_tokens", "unknown_option_hint"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean --temperature?"`` for the closest choice, or ``""`` when none is close (difflib).

    Leading dashes are left out of the comparison: every option shares them,
    which would make ``--bogus`` look close to ``--out``.
    """
    by_name = {choice.lstrip("-").lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lstrip("-").lower(), list(by_name), n=1, cutoff=0.7)
    return f"; did you mean {by_name[close[0]]}?" if close else ""


def unknown_option_hint(message: str, options: Iterable[str]) -> str:
    """argparse's "unrecognized arguments: --temprature 0.5" with "did you mean --temperature?" added.

    Only words that look like options are matched (a value after an unknown
    option is not), each against the long and short option strings.
    """
    marker = "unrecognized arguments:"
    if marker not in message:
        return message
    known = [option for option in options if option.startswith("--")]
    for word in message.split(marker, 1)[1].split():
        if word.startswith("-") and not _is_number(word):
            option = word.split("=", 1)[0]
            return f"unknown option {option}{did_you_mean(option, known) or ' (%%deepseek? lists the options)'}"
    return message


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
