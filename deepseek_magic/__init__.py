"""deepseek-magic: DeepSeek V4 as a first-class Jupyter/IPython tool.

Importing the package is kept cheap (``%load_ext`` should be instant): the
heavy modules are imported on first use through ``__getattr__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from deepseek_magic.client import AsyncChatClient, ChatClient
    from deepseek_magic.config.settings import Settings
    from deepseek_magic.conversation.session import Session
    from deepseek_magic.core.events import Reply, Usage

_LAZY = {
    "Session": "deepseek_magic.conversation.session",
    "Settings": "deepseek_magic.config.settings",
    "ChatClient": "deepseek_magic.client",
    "AsyncChatClient": "deepseek_magic.client",
    "Reply": "deepseek_magic.core.events",
    "Usage": "deepseek_magic.core.events",
}

__all__ = [
    "AsyncChatClient",
    "ChatClient",
    "Reply",
    "Session",
    "Settings",
    "Usage",
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext deepseek_magic``: register ``%%deepseek`` and ``%deepseek``."""
    from deepseek_magic.ipython.magics import load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext deepseek_magic``."""
    from deepseek_magic.ipython.magics import unload

    unload(shell)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'deepseek_magic' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module_name), name)
