"""The notebook around a ``%%deepseek`` cell: context before its prompt, its reply's code into a new cell.

Both cell options and ``%deepseek fix`` come through here, so a fix request
gets the same context rules, the same masking of the API key and the same
way of offering code as any cell.

Code is only ever *offered*: :func:`offer_code` calls IPython's
``set_next_input(code, replace=False)``, the ``set_next_input`` payload of the
execute reply that JupyterLab, Notebook 7 and VS Code turn into a new cell
below (the IPython terminal pre-fills the next prompt with it). Nothing the
model wrote is executed by the extension.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from deepseek_magic.config.settings import MAX_CONTEXT_CELLS

if TYPE_CHECKING:
    from deepseek_magic.core.events import Reply
    from deepseek_magic.ipython.magics import DeepSeekMagics

__all__ = ["OFFERED", "offer_code", "prepare_prompt"]

#: What the cell prints when the reply's code went into a new cell.
OFFERED = "The reply's code is in a new cell below (not run)."
#: The same in a terminal, where the code waits at the next prompt.
OFFERED_TERMINAL = "The reply's code is at the next prompt (not run)."
NO_CODE = "The reply has no Python code block, so no cell was added."


def context_cells(magics: DeepSeekMagics, args: Any) -> int:
    """How many earlier cells go before the prompt: ``--context N``, else the ``context`` setting."""
    requested = getattr(args, "context", None)
    if requested is None:
        return int(magics.settings.context)
    if not 0 <= requested <= MAX_CONTEXT_CELLS:
        raise UsageError(f"--context takes 0 to {MAX_CONTEXT_CELLS} cells, not {requested}")
    return int(requested)


def prepare_prompt(magics: DeepSeekMagics, args: Any, text: str, *, exclude: frozenset[int] = frozenset()) -> str:
    """The user message a cell sends: context block, prompt, the ask for a code block; the API key masked.

    ``exclude`` keeps execution numbers out of the context (the failing
    cell of a fix request, which the request already quotes).
    """
    from deepseek_magic.core.errors import redact
    from deepseek_magic.features.code_blocks import with_code_instruction
    from deepseek_magic.features.notebook_context import context_block, with_context

    cells = context_cells(magics, args)
    if cells:
        recorder = magics.recorder
        runs = recorder.history.recent(cells, exclude=exclude)
        text = with_context(context_block(runs, recorder.output_text, budget=magics.context_tokens), text)
    if getattr(args, "code", False):
        text = with_code_instruction(text)
    return redact(text, *magics.settings.secrets_to_redact())


def offer_code(shell: Any, reply: Reply | None) -> str | None:
    """Put the reply's main code block into a new cell below (never run it); say so in one line.

    Returns the code offered, or ``None`` when the reply had none (a note, not an error).
    """
    from deepseek_magic.features.code_blocks import main_code_block

    code = main_code_block(reply.content) if reply is not None else None
    if code is None:
        print(NO_CODE)
        return None
    shell.set_next_input(code, replace=False)
    print(OFFERED_TERMINAL if type(shell).__module__.startswith("IPython.terminal") else OFFERED)
    return code
