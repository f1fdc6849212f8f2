"""Model text → safe HTML, and the block splitter that keeps streaming cheap.

Model output is untrusted: a prompt-injected page can make the model write
``<img onerror=…>`` or ``[x](javascript:…)``, and the ipywidgets ``HTML``
widget inserts its value with ``innerHTML`` without sanitizing it. So Markdown
is rendered with raw HTML *disabled* in the parser (tags come out as text) and
the result still goes through nh3 (ammonia) with a closed list of tags,
attributes and URL schemes: two independent layers, either one enough.

Images are not rendered: ``![alt](url)`` becomes a plain link, because an
image the browser fetches on its own is the classic way to exfiltrate data
from an LLM chat (the URL carries the secret); a link needs a click.

:func:`split_blocks` cuts a growing answer into finished Markdown blocks and a
tail, so a streaming view renders and sends each finished block once and
re-sends only the tail: traffic grows with the answer, not with its square.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import TYPE_CHECKING

import nh3

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

#: Formatting a Markdown answer can need, and nothing that runs code or fetches on its own.
ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "dd",
        "del",
        "details",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "span",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "code": {"class"},
    "th": {"style"},
    "td": {"style"},
}
#: Column alignment is the only inline style a Markdown table produces; every other property is dropped.
ALLOWED_STYLE_PROPERTIES = frozenset({"text-align"})
URL_SCHEMES = frozenset({"http", "https", "mailto"})
_LANGUAGE_CLASS = re.compile(r"language-[\w+#.-]{1,40}")


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    # ``class`` only as markdown-it's ``language-xyz`` on code, so model text cannot pick page CSS classes.
    if attribute == "class":
        return value if tag == "code" and _LANGUAGE_CLASS.fullmatch(value) else None
    return value


def sanitize(fragment: str) -> str:
    """``fragment`` with everything outside the allow-lists removed (scripts with their content)."""
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(ALLOWED_STYLE_PROPERTIES),
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Built once: constructing a MarkdownIt compiles its rule chains, which costs more than rendering a paragraph.
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    parser.disable("image")
    return parser


def markdown_to_html(text: str) -> str:
    """Model Markdown as sanitized HTML (CommonMark + tables; raw HTML shown as text)."""
    if not text:
        return ""
    return sanitize(_parser().render(text))


def escape_text(text: str, *, breaks: bool = False) -> str:
    """Model plain text (reasoning) as HTML that shows exactly the characters, line breaks kept.

    Live widgets use CSS ``white-space: pre-wrap`` (the widget inserts HTML
    unsanitized, so the style holds). A trailing newline gets a twin because
    pre-wrap does not draw the empty last line of a block otherwise. With
    ``breaks`` the lines are joined with ``<br>`` instead: saved notebooks go
    through GitHub's or JupyterLab's sanitizer, which may drop ``style``.
    """
    escaped = html.escape(text)
    if breaks:
        return "<div>" + escaped.replace("\n", "<br>\n") + "</div>"
    if escaped.endswith("\n"):
        escaped += "\n"
    return f'<div style="white-space: pre-wrap">{escaped}</div>'


# ------------------------------------------------------------------ streaming

_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_ATX_HEADING = re.compile(r"^#{1,6}(?:[ \t]|$)")
_LIST_MARKER = re.compile(r"^(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")


def _fence_opening(line: str) -> tuple[str, int, bool] | None:
    """(fence char, fence length, at column 0) when ``line`` opens a code fence."""
    match = _FENCE_OPEN.match(line)
    if match is None:
        return None
    indent, fence, info = match.groups()
    if fence[0] == "`" and "`" in info:  # ```x``` on one line is an inline code span, not a fence
        return None
    return fence[0], len(fence), not indent


def _closes(line: str, fence: tuple[str, int, bool]) -> bool:
    stripped = line.strip()
    char, length, _ = fence
    return len(stripped) >= length and stripped == char * len(stripped)


def split_blocks(text: str) -> tuple[list[str], str]:
    """The finished Markdown blocks of a growing ``text``, and the unfinished tail.

    A block is finished only once the line that starts the next one has
    arrived, and the cut is made only where rendering the pieces apart gives
    the same HTML as rendering them together:

    * a blank line followed by a line that is not indented (an indented line
      may continue a list item, or be code);
    * before and after a code fence that starts at column 0;
    * before and after an ATX heading at column 0;
    * between the items of a list that starts at column 0 (an LLM's tight
      lists have no blank lines, and a whole list is often most of an answer).

    Nothing is ever cut inside a code fence, whatever its indentation.
    Blocks come without their trailing newlines; the tail starts where the
    last cut was made (``""`` when the text ends on a finished fence).
    """
    blocks: list[str] = []
    start = 0  # offset where the current block begins
    kind = ""  # "list", "heading" or "" for the current block
    has_content = False
    blank_before = False
    fence: tuple[str, int, bool] | None = None
    offset = 0
    length = len(text)
    while offset < length:
        end = text.find("\n", offset)
        if end < 0:
            # An unfinished line belongs to the tail; its first character already says whether a blank
            # line before it ended the block (what kind of line it is may still change).
            if has_content and blank_before and fence is None and not text[offset].isspace():
                blocks.append(text[start:offset].rstrip("\n"))
                start = offset
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
        opening = _fence_opening(line)
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
    return blocks, text[start:]


def open_fence(tail: str) -> tuple[int, str] | None:
    """When ``tail`` (from :func:`split_blocks`) is a column-0 code fence still open, where its code starts.

    Returns (offset of the first code line, the fence's closing marker), so a
    view can freeze finished code lines of a long block before the fence
    closes; ``None`` for anything else.
    """
    end = tail.find("\n")
    if end < 0:
        return None
    opening = _fence_opening(tail[:end])
    if opening is None or not opening[2]:
        return None
    return end + 1, opening[0] * opening[1]


def code_html(code: str) -> str:
    """A piece of code as an escaped ``<pre><code>`` block (its text, nothing interpreted)."""
    return f"<pre><code>{html.escape(code)}</code></pre>"
