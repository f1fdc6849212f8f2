"""How a reply looks, written once for the live widget and for the static copy it leaves behind.

The live widget styles its parts with a stylesheet (:func:`widget_css`); the
static HTML a saved notebook keeps cannot rely on a stylesheet, so it carries
the *same* declarations inline (:data:`REASONING_BOX` …). Both come from the
constants here, so the reasoning box does not change its look when the live
view becomes static. Where a sanitizer drops ``style`` (GitHub), the static
copy still separates the reasoning from the answer: its body is a
``<blockquote>``, which every renderer indents and marks.

Colours are JupyterLab's theme variables with light-theme fallbacks, so the
box follows a dark theme too.
"""

from __future__ import annotations

#: The folded reasoning pane: a thin box that keeps the expanded reasoning apart from the answer.
REASONING_BOX = (
    "border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 4px; padding: 2px 8px; margin: 4px 0 8px 0"
)
#: Its title line ("Thinking… 412 tokens · 6.2 s", "Thought for 9.8 s · 845 tokens").
REASONING_SUMMARY = "cursor: pointer; color: var(--jp-ui-font-color2, #616161); font-size: 0.9em"
#: The reasoning text: muted and a little smaller than the answer; no quote bar inside the box.
REASONING_BODY = (
    "color: var(--jp-ui-font-color2, #616161); font-size: 0.9em; margin: 4px 0 6px 0; padding: 0; border: none"
)


def widget_css(root: str) -> str:
    """The live widget's stylesheet: the declarations above, plus what only a live view has."""
    return f"""
{root} .dsm-reasoning {{ {REASONING_BOX}; }}
{root} .dsm-reasoning > summary {{ {REASONING_SUMMARY}; }}
{root} .dsm-reasoning > blockquote {{ {REASONING_BODY}; white-space: pre-wrap; }}
{root} .dsm-note {{ font-style: italic; }}
{root} .dsm-tail-raw {{ white-space: pre-wrap; }}
{root} .dsm-hidden {{ display: none; }}
"""
