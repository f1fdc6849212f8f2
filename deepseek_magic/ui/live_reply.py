"""The live reply widget: a small anywidget that receives each update as one message of what is new.

ipywidgets' own widgets have no "append": every assignment to a synced trait
ships the whole value, so a growing reply in an ``HTML`` widget costs bytes in
the square of its length, and freezing finished pieces into new widgets costs
a widget (about a kilobyte of state) per piece. This widget's content never
lives in its state: the kernel sends custom messages (see ``live_reply.js`` for
their fields) carrying only the new reasoning text, the new answer text and
each finished answer block as sanitized HTML, and the browser keeps the
reply. Its synced traits are short plain-text lines (header, status, note,
error, footer, the final reasoning title) and the tool trace's sanitized HTML.

The browser code is ``live_reply.js`` beside this module (read from the
package, sent inline: nothing is fetched from a CDN), styled by
:func:`.look.widget_css`. anywidget's front end ships as a prebuilt JupyterLab
extension in its wheel.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import lru_cache
from importlib.resources import files
from typing import Any

import anywidget
import traitlets

from deepseek_magic.ui.look import widget_css


@lru_cache(maxsize=1)
def _esm() -> str:
    """``live_reply.js`` without its comments and indentation: it is sent with every reply's widget.

    Only whole comment lines and leading/trailing blanks go (the module has no
    multi-line strings), so the code itself is exactly what is reviewed.
    """
    source = files("deepseek_magic.ui").joinpath("live_reply.js").read_text(encoding="utf-8")
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith(("//", "/**")))


class LiveReply(anywidget.AnyWidget):
    """One streaming reply in the browser. Send content with :meth:`push`; set the traits for the rest."""

    _esm = _esm()
    _css = widget_css(".dsm-live")

    #: Tells this widget's model from the others' in the browser module.
    key = traitlets.Unicode("").tag(sync=True)
    #: Plain text, shown with ``textContent``.
    header = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    footer = traitlets.Unicode("").tag(sync=True)
    #: The reasoning pane's final title; while it is empty the browser counts "Thinking… N tokens · s" itself.
    title = traitlets.Unicode("").tag(sync=True)
    #: The tool trace: HTML built from escaped text (sanitized again in the browser); small, re-sent whole.
    tools = traitlets.Unicode("").tag(sync=True)
    tools_title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, describe: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(key=uuid.uuid4().hex, **kwargs)
        self._describe = describe

    def __repr__(self) -> str:
        """The reply in a few words: the ``text/plain`` of the live output, for text frontends."""
        return self._describe()

    def push(self, content: dict[str, Any]) -> None:
        """One update's new content, as a custom message (nothing of it stays in the widget's state)."""
        self.send(content)

    def close(self) -> None:
        layout = self.layout  # DOMWidget made one for itself: close it too, so no model outlives the reply
        super().close()
        layout.close()
