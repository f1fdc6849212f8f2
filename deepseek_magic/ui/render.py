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

:func:`split_blocks` (from :mod:`.blocks`) cuts a growing answer into finished
Markdown blocks and a tail, so a streaming view renders and sends each finished
block once: traffic grows with the answer, not with its square.
"""

from __future__ import annotations

import bisect
import html
import re
from functools import lru_cache
from typing import TYPE_CHECKING

import nh3

# split_blocks is re-exported: the streaming half of the rendering rule.
from deepseek_magic.ui.blocks import split_blocks as split_blocks

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


# ------------------------------------------------------- Markdown alternates
#
# A ``text/markdown`` output is rendered by the frontend, and JupyterLab renders
# trusted Markdown *without* sanitizing the raw HTML inside it. So untrusted
# text never goes into a Markdown output as is: plain text goes in with every
# ASCII punctuation character as a numeric entity (an entity is always text,
# never syntax, in every CommonMark/GFM renderer), and Markdown written by a
# model keeps its formatting but loses raw HTML, links and images, while its
# code becomes our own ``<code>``/``<pre>`` elements around entity-escaped text.
# Nothing here depends on guessing how a particular renderer tokenizes: a
# renderer that sees the structure differently still finds no tag from the model.

_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_PUNCTUATION = frozenset(r"""!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~""")
_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_LINK_SYNTAX = re.compile(r"\]\(|\]:|\]\[")
_BACKTICK_RUN = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def entities(text: str) -> str:
    """Every ASCII punctuation character as ``&#N;``: text to every Markdown and HTML parser."""
    return "".join(f"&#{ord(char)};" if char in _PUNCTUATION else char for char in text)


def markdown_text(text: str) -> str:
    """Plain untrusted text (a prompt, reasoning, a server message) for a Markdown output: shown, never interpreted.

    Line breaks become ``<br>`` so the text stays one paragraph (a blank line
    would start new Markdown blocks); leading indentation becomes no-break
    spaces, so no line turns into an indented code block.
    """
    escaped = entities(text)
    escaped = _LEADING_SPACE.sub(lambda match: "&#160;" * len(match.group()), escaped)
    return escaped.replace("\r", "").replace("\n", "<br>\n")


#: Code that reads the same to a renderer that does not see it as code: no tag, link, entity, backtick or cell split.
_INERT_CODE = re.compile(r"[^`<>&\[\]\\|$]*")


def _code_span(code: str) -> str:
    """Inert one-line code stays a backtick span (natural Markdown); anything else is our own escaped element."""
    if code and code.strip() == code and "\n" not in code and _INERT_CODE.fullmatch(code):
        return f"`{code}`"
    return f"<code>{entities(code)}</code>"


def _code_block(indent: str, info: str, lines: list[str]) -> str:
    language = info.strip().split(" ")[0] if info.strip() else ""
    if not _LANGUAGE_CLASS.fullmatch(f"language-{language}"):
        language = ""  # the info string is model text too: only a plain language name is kept
    attribute = f' class="language-{language}"' if language else ""
    if all(_INERT_CODE.fullmatch(line) for line in lines):
        # Kept as a fence (highlighted on GitHub); read as prose by some renderer, it still has no tag or link.
        fence = "```"
        return "\n".join([f"{indent}{fence}{language}", *(f"{indent}{line}" for line in lines), f"{indent}{fence}"])
    body = "\n".join(entities(line) for line in lines)
    return f"{indent}<pre><code{attribute}>{body}</code></pre>"


def _odd_backslashes(text: str, index: int) -> bool:
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


class _Backticks:
    """Where each backtick run starts, by length, and where blank lines are: code spans found in O(n log n)."""

    def __init__(self, text: str) -> None:
        self.starts: dict[int, list[int]] = {}
        for match in _BACKTICK_RUN.finditer(text):
            self.starts.setdefault(len(match.group()), []).append(match.start())
        self.blanks = [match.start() for match in _BLANK_LINE.finditer(text)]

    def closing(self, start: int, size: int) -> int | None:
        """The run of exactly ``size`` backticks closing a span opened before ``start``, not past a blank line."""
        runs = self.starts.get(size, [])
        index = bisect.bisect_left(runs, start)
        if index == len(runs):
            return None
        found = runs[index]
        blank = bisect.bisect_left(self.blanks, start)
        if blank < len(self.blanks) and self.blanks[blank] < found:
            return None
        return found


def _inline(text: str, *, brackets: bool) -> str:
    """One run of non-code Markdown: code spans to ``<code>``, tag starts and (optionally) ``[`` escaped."""
    out: list[str] = []
    ticks = _Backticks(text)
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "`":
            run_end = index
            while run_end < length and text[run_end] == "`":
                run_end += 1
            size = run_end - index
            close = ticks.closing(run_end, size)
            if close is not None and not _odd_backslashes(text, index):
                content = text[run_end:close]
                if len(content) > 2 and content[0] == content[-1] == " " and content.strip():
                    content = content[1:-1]
                out.append(_code_span(content))
                index = close + size
            else:
                out.append("&#96;" * size)  # an unmatched run stays text for every renderer
                index = run_end
            continue
        if char == "<" and _TAG_START.match(text, index):
            if _odd_backslashes(text, index):
                out[-1] = out[-1][:-1]  # ``\<`` was already a literal "<": drop the backslash, keep the entity
            out.append("&lt;")
        elif char == "[" and brackets and not _odd_backslashes(text, index):
            out.append("\\[")
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _segments(text: str) -> list[tuple[str, str]]:
    """``text`` cut into ("text", markdown) and ("code", rendered block) pieces along fenced code blocks."""
    pieces: list[tuple[str, str]] = []
    lines = text.split("\n")
    prose: list[str] = []
    index = 0
    while index < len(lines):
        match = _FENCE_OPEN.match(lines[index])
        if match is None or (match.group(2)[0] == "`" and "`" in match.group(3)):
            prose.append(lines[index])
            index += 1
            continue
        indent, fence, info = match.groups()
        body: list[str] = []
        index += 1
        while index < len(lines):
            stripped = lines[index].strip()
            if len(stripped) >= len(fence) and stripped == fence[0] * len(stripped):
                index += 1
                break
            body.append(lines[index][len(indent) :] if lines[index].startswith(indent) else lines[index].lstrip())
            index += 1
        if prose:
            pieces.append(("text", "\n".join(prose)))
            prose = []
        pieces.append(("code", _code_block(indent, info, body)))
    if prose:
        pieces.append(("text", "\n".join(prose)))
    return pieces


def markdown_safe(text: str) -> str:
    """Model Markdown for a ``text/markdown`` output: formatting kept, nothing the frontend would run or fetch.

    * raw HTML: every ``<`` that could open a tag becomes ``&lt;``, so it shows as text;
    * code spans and fenced blocks become ``<code>``/``<pre><code>`` around entity-escaped text
      (code reads exactly as written, and no renderer can find a tag or link inside it);
    * links and images: when the text has link syntax (``](``, ``]:``, ``][``), every ``[`` is
      escaped, so no link, reference or image forms and URLs stay visible as text; a GFM
      renderer still autolinks bare ``http(s)://`` URLs.

    The rich, clickable rendering of the same reply is the sanitized HTML of
    :func:`markdown_to_html`; this is the alternate for frontends that only
    render Markdown, and what GitHub or nbviewer show.
    """
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    pieces = _segments(text)
    rendered = "\n".join(_inline(piece, brackets=False) if kind == "text" else piece for kind, piece in pieces)
    if _LINK_SYNTAX.search(rendered) is None and "![" not in rendered:
        return rendered
    # Decided on the output, after code became entities: only brackets a renderer can see count.
    return "\n".join(_inline(piece, brackets=True) if kind == "text" else piece for kind, piece in pieces)


def markdown_code(text: str, language: str = "") -> str:
    """``text`` as a code block for a Markdown output, whatever it contains (a fence inside cannot close it)."""
    return _code_block("", language, text.split("\n"))
