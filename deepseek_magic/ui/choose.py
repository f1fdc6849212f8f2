"""Which view suits the frontend this kernel talks to.

There is no protocol-level "can this frontend render widgets?" question, so
this follows the tqdm/rich heuristics: a ZMQ kernel means a notebook-like
frontend; a terminal shell gets the incremental text view. The user can
override with ``--view`` or ``%config DeepSeekMagics.view``.
"""

from __future__ import annotations

from typing import Any

from deepseek_magic.ui.base import ReplyView
from deepseek_magic.ui.static import ReplyHeader


def in_kernel(shell: Any) -> bool:
    """True inside an ipykernel (notebook, lab, VS Code, Colab)."""
    return type(shell).__name__ == "ZMQInteractiveShell" or "ipykernel" in type(shell).__module__


def widgets_available() -> bool:
    """ipywidgets importable (it is a dependency, but a trimmed environment may lack it)."""
    from importlib.util import find_spec

    return find_spec("ipywidgets") is not None


def choose_view(preference: str, shell: Any, header: ReplyHeader) -> ReplyView:
    """A view for ``preference`` (auto, widget or text) in ``shell``.

    A terminal always gets incremental text (it cannot show widgets or
    replace a display); in a kernel, ``text`` is the display-handle Markdown
    path and ``auto``/``widget`` the widget view.
    """
    if not in_kernel(shell):
        from deepseek_magic.ui.terminal_view import TerminalView

        return TerminalView(header)
    if preference != "text" and widgets_available():
        from deepseek_magic.ui.widget_view import WidgetReplyView

        return WidgetReplyView(header)
    from deepseek_magic.ui.display_view import DisplayHandleView

    return DisplayHandleView(header)
