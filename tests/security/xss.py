"""An XSS corpus and an independent checker for what reaches a frontend.

The checker shares no code with :mod:`deepseek_magic.ui.render`: it parses
with the standard library's ``html.parser`` and rejects anything that can run
script or navigate to a script URL. ``text/markdown`` is also rendered with
markdown-it-py *with raw HTML on and link validation off*, because
JupyterLab's renderer passes raw HTML inside trusted Markdown through and
marked does not vet link schemes; whatever such a renderer would produce is
checked too.

Every payload sets ``window.__xss = 1`` when it runs, so the browser test can
watch a single sentinel.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from markdown_it import MarkdownIt

#: OWASP filter-evasion strings, mutation XSS, script URLs hidden by entities and whitespace, Markdown links.
CORPUS: tuple[str, ...] = (
    "<script>window.__xss=1</script>",
    "<img src=x onerror=window.__xss=1>",
    '<IMG SRC="javascript:window.__xss=1">',
    "<IMG SRC=JaVaScRiPt:window.__xss=1>",
    "<img src=`x` onerror=`window.__xss=1`>",
    '<IMG """><SCRIPT>window.__xss=1</SCRIPT>">',
    '<IMG SRC=# onmouseover="window.__xss=1">',
    '<IMG SRC=/ onerror="window.__xss=1"></img>',
    '<IMG SRC="jav&#x09;ascript:window.__xss=1;">',
    '<IMG SRC="jav&#x0A;ascript:window.__xss=1;">',
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;window.__xss=1>",
    '<SCRIPT/XSS SRC="http://xss.rocks/xss.js"></SCRIPT>',
    "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=window.__xss=1>",
    "<<SCRIPT>window.__xss=1//<</SCRIPT>",
    "<svg/onload=window.__xss=1>",
    "<svg><animate onbegin=window.__xss=1 attributeName=x dur=1s>",
    "<details open ontoggle=window.__xss=1>",
    "<iframe srcdoc='<script>parent.__xss=1</script>'></iframe>",
    "<iframe src=javascript:window.__xss=1></iframe>",
    '<object data="data:text/html,<script>parent.__xss=1</script>"></object>',
    '<embed src="data:text/html,<script>parent.__xss=1</script>">',
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    '<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;img src=1 onerror=window.__xss=1&gt;">',
    '<noscript><p title="</noscript><img src=x onerror=window.__xss=1>">',
    "<form><button formaction=javascript:window.__xss=1>x</button></form>",
    '<a href="javascript:window.__xss=1">click</a>',
    '<a href="jav&#x61;script:window.__xss=1">entity</a>',
    '<a href=" &#14;  javascript:window.__xss=1">spaced</a>',
    "<style>@import 'javascript:window.__xss=1';</style>",
    '<div style="background:url(javascript:window.__xss=1)">styled</div>',
    "<input autofocus onfocus=window.__xss=1>",
    "<video><source onerror=window.__xss=1></video>",
    '<base href="javascript:window.__xss=1//">',
    "[link](javascript:window.__xss=1)",
    "[entity](jav&#x61;script:window.__xss=1)",
    "[data](data:text/html;base64,PHNjcmlwdD5wYXJlbnQuX194c3M9MTwvc2NyaXB0Pg==)",
    "[angle](<javascript:window.__xss=1>)",
    '![image](x" onerror="window.__xss=1)',
    "[ref][r]\n\n[r]: javascript:window.__xss=1",
    "<javascript:window.__xss=1>",
    "`code` <img src=x onerror=window.__xss=1> `more`",
    "\\`<img src=x onerror=window.__xss=1>\\`",
    "| a | `b | <img src=x onerror=window.__xss=1>` |\n|---|---|\n| 1 | 2 |",
    "```\n</pre><img src=x onerror=window.__xss=1>\n```",
    "~~~\n~~~\n<img src=x onerror=window.__xss=1>",
    "```<img/src/onerror=window.__xss=1>\nplain code\n```",
    "   ```js\n   x = 1\n  ```\n<img src=x onerror=window.__xss=1>",
    "$<img src=x onerror=window.__xss=1>$",
    "&lt;img src=x onerror=window.__xss=1&gt;",
)

#: Every payload in one text, as a single hostile reply would carry them.
ALL = "\n\n".join(CORPUS)

_FORBIDDEN_TAGS = frozenset(
    {
        "script",
        "iframe",
        "object",
        "embed",
        "style",
        "svg",
        "math",
        "base",
        "link",
        "meta",
        "form",
        "frame",
        "frameset",
        "applet",
        "noscript",
        "template",
        "input",
        "button",
        "textarea",
        "select",
        "video",
        "audio",
        "source",
        "img",
        "body",
        "html",
        "head",
        "animate",
        "set",
        "image",
        "portal",
    }
)
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "data", "background", "poster"})
_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]+")


def url_scheme(value: str) -> str | None:
    """The scheme a browser would see in an attribute value (entities decoded, whitespace and controls gone)."""
    cleaned = _CONTROL_OR_SPACE.sub("", html.unescape(value)).lower()
    match = re.match(r"([a-z][a-z0-9+.\-]*):", cleaned)
    return match.group(1) if match else None


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
            if name == "srcdoc":
                self.problems.append(f"<{tag} srcdoc>")
            if name in _URL_ATTRIBUTES and value is not None:
                scheme = url_scheme(value)
                if scheme is not None and scheme not in _SAFE_SCHEMES:
                    self.problems.append(f"<{tag} {name}={scheme}:…>")
            if name == "style" and value and re.search(r"url\(|expression|javascript", value, re.IGNORECASE):
                self.problems.append(f"<{tag} style=…>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def html_problems(fragment: str) -> list[str]:
    """What in ``fragment`` could run script or load a script URL (empty when clean)."""
    finder = _Finder()
    finder.feed(fragment)
    finder.close()
    return finder.problems


def _renderer() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": True})
    parser.enable(["table", "strikethrough"])
    parser.validateLink = lambda url: True  # type: ignore[method-assign]  # like marked: no scheme vetting
    return parser


_MARKDOWN = _renderer()


def markdown_problems(markdown: str) -> list[str]:
    """Problems in the Markdown source itself and in what a raw-HTML-passing renderer makes of it."""
    return html_problems(markdown) + html_problems(_MARKDOWN.render(markdown))


def bundle_problems(data: dict[str, Any]) -> list[str]:
    """Problems in every representation of a display bundle a frontend renders as HTML."""
    problems: list[str] = []
    for mime, value in data.items():
        if not isinstance(value, str):
            continue
        if mime == "text/html":
            problems += [f"text/html: {p}" for p in html_problems(value)]
        elif mime == "text/markdown":
            problems += [f"text/markdown: {p}" for p in markdown_problems(value)]
    return problems


def widget_bundles(messages: list[tuple[str, Any, str]]) -> list[dict[str, Any]]:
    """What widgets would render as HTML, from recorded comm messages (kind, data, comm id), as bundles.

    An HTML widget's ``value`` is inserted with ``innerHTML``; an Output widget's
    outputs are rendered like cell outputs. The live reply widget inserts (after
    sanitizing them again) its finished blocks (``b`` in a custom message) and
    its tool trace (``tools``); its other fields are drawn as text.
    """
    models: dict[str, str] = {}
    bundles: list[dict[str, Any]] = []
    for _kind, data, comm_id in messages:
        if not isinstance(data, dict):
            continue
        content = data.get("content") if data.get("method") == "custom" else None
        if isinstance(content, dict) and isinstance(content.get("b"), str):
            bundles.append({"text/html": content["b"]})
        state = data.get("state") or {}
        if isinstance(state.get("tools"), str):
            bundles.append({"text/html": state["tools"]})
        if "_model_name" in state:
            models[comm_id] = str(state["_model_name"])
        if models.get(comm_id, "").startswith("HTML") and isinstance(state.get("value"), str):
            bundles.append({"text/html": state["value"]})
        for output in state.get("outputs") or []:
            if isinstance(output, dict) and isinstance(output.get("data"), dict):
                bundles.append(output["data"])
    return bundles
