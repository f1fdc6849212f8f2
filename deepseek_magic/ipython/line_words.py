"""Splitting a magic's option line into words: shared by the cell magic and the ``%deepseek`` subcommands.

Why its own module: ``commands`` (the subcommands) sits below ``magics`` and
needs the same splitting; taking it from ``magics`` made the two import each
other.
"""

from __future__ import annotations

import shlex

from IPython.core.error import UsageError


def parser_tokens(line: str) -> list[str]:
    """The line split like a POSIX shell: quotes group words and are removed."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"could not read the options: {exc}") from None


__all__ = ["parser_tokens"]
