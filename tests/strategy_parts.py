"""Small named functions for hypothesis strategies (``.map``/``.filter``) shared by the property tests.

Why not lambdas: hypothesis 6.100 reads a lambda's source on every draw to describe it; one interpolation
property test took 40 s instead of 2 s with the lowest declared versions.
"""

from __future__ import annotations


def attribute(name: str) -> str:
    """``.name``: an attribute step of a reference."""
    return "." + name


def index(number: int) -> str:
    """``[n]``: an index step of a reference."""
    return f"[{number}]"


def joined(parts: tuple[str, list[str]]) -> str:
    """A reference from its name and its steps."""
    return parts[0] + "".join(parts[1])


def braced(reference: str) -> str:
    """``{reference}``: a reference as a prompt writes it."""
    return "{" + reference + "}"


def escaped(reference: str) -> str:
    """``{{reference}}``: an escaped reference (kept as text)."""
    return "{{" + reference + "}}"


def one_line(text: str) -> bool:
    """True for text without line breaks."""
    return "\n" not in text and "\r" not in text
