"""deepseek-magic: DeepSeek V4 as a first-class Jupyter/IPython tool.

Importing the package is kept cheap (``%load_ext`` should be instant): the
heavy modules are imported on first use through ``__getattr__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .client import AsyncChatClient, ChatClient
    from .config import Settings
    from .events import Reply, Usage

_LAZY = {
    "Settings": "deepseek_magic.config",
    "ChatClient": "deepseek_magic.client",
    "AsyncChatClient": "deepseek_magic.client",
    "Reply": "deepseek_magic.events",
    "Usage": "deepseek_magic.events",
}

__all__ = ["AsyncChatClient", "ChatClient", "Reply", "Settings", "Usage", "__version__"]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'deepseek_magic' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module_name), name)
