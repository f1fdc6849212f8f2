"""A session written out as a document: Markdown, a notebook, or the session file.

Why here, among the views: the notebook export *renders* each reply the way a
finished cell shows it (:func:`.static.html_bundle`: sanitized HTML, escaped
Markdown, plain text), so an exported notebook opened in JupyterLab, on GitHub
or in nbviewer looks like the cells that made it, and no model text reaches
it as markup. Its cells are ``%%deepseek --raw`` cells with the prompt as
sent, so the conversation can be run again.

The Markdown export is a file for reading and sharing: prompts and replies
are written as the Markdown they are, reasoning is HTML-escaped inside a
``<details>`` block (so nothing in it can close the block), tool calls show
their arguments and folded results. It is never displayed in the notebook.

The JSON export is the session file, the same as ``%deepseek save`` writes
(``%deepseek load`` reads it back). Every format goes through
:func:`deepseek_magic.core.files.write_file`: no overwriting without ``overwrite``,
never through a symbolic link.
"""

from __future__ import annotations

import html
import json
import os
import shlex
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepseek_magic.core.files import write_file
from deepseek_magic.features.code_blocks import fenced
from deepseek_magic.ui.render import entities, markdown_text
from deepseek_magic.ui.static import footer_text, html_bundle

if TYPE_CHECKING:
    from deepseek_magic.conversation.session import Session
    from deepseek_magic.conversation.turns import Turn

__all__ = ["FORMATS", "export_session", "markdown_document", "notebook_document"]

#: Suffix → what is written (as the one-line confirmation names it).
FORMATS = {
    ".md": "Markdown",
    ".markdown": "Markdown",
    ".ipynb": "a notebook",
    ".json": "a session file",
    ".jsonl": "a session file",
}
_RESULT_CAP = 4_000  # characters of one tool result shown (the session file keeps them whole)


def export_session(session: Session, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``session`` to ``path`` in the format its suffix names; returns the path.

    ``ValueError`` for an unknown suffix, ``FileExistsError`` when the file is
    there and ``overwrite`` is false, :class:`~deepseek_magic.core.files.FileKindError`
    for a link, directory or device at ``path``.
    """
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        given = repr(target.suffix) if target.suffix else "a path without a suffix"
        raise ValueError(f"export writes .md, .ipynb or .json files, not {given}")
    pieces: Iterator[str] | list[str]
    if suffix in (".json", ".jsonl"):
        pieces = session.file_lines()
    elif suffix == ".ipynb":
        pieces = [notebook_text(notebook_document(session))]
    else:
        pieces = [markdown_document(session)]
    return write_file(target, pieces, overwrite=overwrite)


# ----------------------------------------------------------------------- shared


def _summary(session: Session) -> str:
    turns = len(session.turns)
    usage = session.usage
    parts = [f"{turns} turn{'s' if turns != 1 else ''}", session.settings.model]
    if usage.total_tokens:
        parts.append(f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens")
    if usage.cost is not None and usage.cost:
        parts.append(f"${usage.cost:.4f}")
    parts.append("exported " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    return " · ".join(parts)


def _tool_rounds(turn: Turn) -> list[tuple[str, str, str | None]]:
    """Each tool call of ``turn`` as (name, arguments, result or ``None`` when none came back)."""
    results: dict[str, str] = {}
    calls: list[tuple[str, str, str]] = []
    for message in turn.intermediate:
        if message.get("role") == "tool":
            results[str(message.get("tool_call_id", ""))] = str(message.get("content", ""))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {} if isinstance(call, dict) else {}
            calls.append((str(call.get("id", "")), str(function.get("name", "")), str(function.get("arguments", ""))))
    calls += [(call.id, call.name, call.arguments) for call in turn.reply.tool_calls]
    return [(name, arguments, results.get(call_id)) for call_id, name, arguments in calls]


def _clip(text: str) -> str:
    return text if len(text) <= _RESULT_CAP else text[:_RESULT_CAP] + f"… [{len(text) - _RESULT_CAP:,} more characters]"


def _turn_footer(turn: Turn) -> str:
    return footer_text(turn.reply, None, turn.status)


# --------------------------------------------------------------------- Markdown


def markdown_document(session: Session) -> str:
    """The conversation as one Markdown file (for reading and sharing, not for display in the notebook)."""
    lines = [f"# DeepSeek conversation: session {session.name}", "", _summary(session), ""]
    system = session.system
    for number, turn in enumerate(session.turns, 1):
        if turn.system and turn.system != system:
            lines += [f"**System prompt:** {turn.system}", ""]
            system = turn.system
        lines += ["---", "", f"## {number} · You", "", turn.prompt.strip("\n"), ""]
        lines += [f"## {number} · DeepSeek · {turn.model or session.settings.model}", ""]
        lines += _markdown_reply(turn)
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_reply(turn: Turn) -> list[str]:
    reply = turn.reply
    lines: list[str] = []
    if reply.reasoning:
        tokens = reply.usage.reasoning_tokens if reply.usage else 0
        title = f"Reasoning · {tokens:,} tokens" if tokens else "Reasoning"
        body = "  \n".join(html.escape(line, quote=False) for line in reply.reasoning.strip("\n").split("\n"))
        lines += [f"<details><summary>{title}</summary>", "", body, "", "</details>", ""]
    for name, arguments, result in _tool_rounds(turn):
        lines += [f"**Tool call** `{name}`", "", fenced(arguments, "json"), ""]
        if result is not None:
            lines += [f"<details><summary>Result of {html.escape(name)}</summary>", "", fenced(_clip(result)), ""]
            lines += ["</details>", ""]
    if len(reply.choices) > 1:
        for index, choice in enumerate(reply.choices, 1):
            lines += [f"**Choice {index}**", "", choice.content.strip("\n"), ""]
    elif reply.content:
        lines += [reply.content.strip("\n"), ""]
    if reply.error:
        lines += [f"**Error:** {reply.error}", ""]
    footer = _turn_footer(turn)
    if footer:
        lines += [f"*{footer}*", ""]
    return lines


# --------------------------------------------------------------------- notebook


def notebook_document(session: Session) -> dict[str, Any]:
    """The conversation as an nbformat 4.5 notebook (a dict): one ``%%deepseek --raw`` cell per turn."""
    title = f"# DeepSeek conversation: session {markdown_text(session.name)}"
    cells: list[dict[str, Any]] = [_markdown_cell("title", f"{title}\n\n{markdown_text(_summary(session))}")]
    system = session.system
    for number, turn in enumerate(session.turns, 1):
        if turn.system and turn.system != system:
            cells.append(_markdown_cell(f"system-{number}", f"**System prompt:** {markdown_text(turn.system)}"))
            system = turn.system
        cells.append(_turn_cell(number, turn))
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "deepseek_magic": {"exported_session": session.name, "turns": len(session.turns)},
        },
        "cells": cells,
    }


def _markdown_cell(cell_id: str, text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def _turn_cell(number: int, turn: Turn) -> dict[str, Any]:
    options = ["--raw"]
    if turn.provider and turn.provider != "deepseek":
        options += ["--provider", turn.provider]
    if turn.model:
        options += ["-m", turn.model]
    outputs = []
    rounds = _tool_rounds(turn)
    if rounds:
        outputs.append(_display(_tools_bundle(rounds)))
    outputs.append(_display(html_bundle(turn.reply, None, None, turn.status)))
    return {
        "cell_type": "code",
        "id": f"turn-{number}",
        "metadata": {"deepseek_magic": {"turn": turn.key, "status": turn.status}},
        "execution_count": None,
        "source": f"%%deepseek {shlex.join(options)}\n{turn.prompt}",  # the magic splits its line like a shell
        "outputs": outputs,
    }


def _display(data: dict[str, str]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def _tools_bundle(rounds: Sequence[tuple[str, str, str | None]]) -> dict[str, str]:
    """Tool calls with folded results: HTML made of escaped text only (valid as Markdown too)."""
    items = []
    plain = []
    for name, arguments, result in rounds:
        shown = "(no result)" if result is None else _clip(result)
        items.append(
            f"<details><summary>🔧 <code>{entities(f'{name}({arguments})')}</code></summary>"
            f"<pre>{entities(shown)}</pre></details>"
        )
        plain.append(f"tool {name}({arguments}) -> {shown}")
    markup = "\n".join(items)
    return {"text/html": markup, "text/markdown": markup, "text/plain": "\n".join(plain)}


def notebook_text(notebook: dict[str, Any]) -> str:
    """The notebook as file text: through nbformat (validated) when it is installed, else plain JSON."""
    try:
        import nbformat
    except ImportError:
        return json.dumps(_split_sources(notebook), indent=1, ensure_ascii=False) + "\n"
    node = nbformat.from_dict(notebook)
    nbformat.validate(node)
    text: str = nbformat.writes(node)
    return text if text.endswith("\n") else text + "\n"


def _split_sources(notebook: dict[str, Any]) -> dict[str, Any]:
    """Sources and text outputs as lists of lines, the layout nbformat writes."""
    cells = []
    for cell in notebook["cells"]:
        copy = dict(cell, source=str(cell["source"]).splitlines(keepends=True))
        if "outputs" in cell:
            copy["outputs"] = [
                dict(out, data={k: str(v).splitlines(keepends=True) for k, v in out["data"].items()})
                for out in cell["outputs"]
            ]
        cells.append(copy)
    return dict(notebook, cells=cells)
