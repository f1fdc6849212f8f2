"""What a saved notebook keeps of a live widget: its static twin, never "Error displaying widget".

A widget lives in the kernel. Saved and reopened without that kernel (or on
GitHub, nbviewer, nbconvert), its output has nothing to draw: JupyterLab says
"Error displaying widget: model not found" and the others print the widget's
repr, ``VBox(children=(HTML(value=…``. JupyterLab picks the widget over any
other representation in the same output, so a fallback inside the output
cannot help there.

So the surfaces that stay interactive (the settings form, the chat box) are
shown as two outputs: a *static* one with the content worth keeping (the
settings summary, the chat transcript; sanitized ``text/html`` with Markdown
and plain-text twins, updated through ``update_display_data`` as things
change) and the *live* widget, whose output carries the mark
:data:`LIVE_MARK` in its metadata and a readable ``text/plain``. The
``pre_save_hook`` below, enabled as a Jupyter server extension (installed to
``etc/jupyter/jupyter_server_config.d/``; ``deepseek-magic lab`` uses it),
drops marked outputs from the file being written, so the saved notebook
holds the static outputs only, while the page keeps its live widgets.
Where the extension does not run, GitHub and nbconvert still show the
readable ``text/plain``/``text/html`` twin instead of a widget repr.

This module must stay importable by a Jupyter server at start-up: the
standard library only.
"""

from __future__ import annotations

import html
import logging
from typing import Any

#: Output-metadata key marking a live widget's output (the value says what it is, for people reading the file).
LIVE_MARK = "deepseek_magic"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

log = logging.getLogger(__name__)


def live_bundle(widget: Any, summary: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, metadata) to display ``widget`` with ``summary`` as its plain and HTML twins, marked as live.

    ``summary`` is text (escaped here), never markup, and never holds a key.
    """
    data = dict(widget._repr_mimebundle_())
    data["text/plain"] = summary
    data["text/html"] = f"<p><i>{html.escape(summary)}</i></p>"
    return data, {LIVE_MARK: {"live_widget": True}}


def is_live(output: Any) -> bool:
    """True for an output displayed by :func:`live_bundle`."""
    if not isinstance(output, dict):
        return False
    metadata = output.get("metadata")
    mark = metadata.get(LIVE_MARK) if isinstance(metadata, dict) else None
    return isinstance(mark, dict) and mark.get("live_widget") is True


def without_live_widgets(notebook: Any) -> int:
    """Drop every live-widget output from ``notebook`` (nbformat 4 as a dict); returns how many were dropped."""
    dropped = 0
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        if not isinstance(outputs, list):
            continue
        kept = [output for output in outputs if not is_live(output)]
        dropped += len(outputs) - len(kept)
        outputs[:] = kept
    return dropped


def pre_save_hook(model: dict[str, Any], **kwargs: Any) -> None:
    """Jupyter's ``ContentsManager`` pre-save hook: the file keeps the static outputs, not the live widgets."""
    if model.get("type") != "notebook":
        return
    dropped = without_live_widgets(model.get("content"))
    if dropped:
        log.debug("deepseek_magic: %d live widget output(s) left out of %s", dropped, kwargs.get("path", ""))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Jupyter server extension entry point (``jpserver_extensions``: ``deepseek_magic.ui.saved``)."""
    return [{"module": "deepseek_magic.ui.saved"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register :func:`pre_save_hook` with the server's contents manager (jupyter_server 2's hook list)."""
    manager = getattr(serverapp, "contents_manager", None)
    register = getattr(manager, "register_pre_save_hook", None)
    if register is None:
        serverapp.log.warning("deepseek_magic: this Jupyter server has no pre-save hooks; live widgets stay in files")
        return
    register(pre_save_hook)
