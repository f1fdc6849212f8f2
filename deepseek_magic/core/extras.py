"""Which optional extras are installed, told in one line (standard library only).

Why in the core: both the launcher and ``python -m deepseek_magic.emulator``
must say how to install the emulator's server stack *before* importing it,
and the emulator may use nothing of the library above the core.
"""

from __future__ import annotations

#: The emulator's server stack: the optional extra ``emulator`` (pulled in by ``lab`` and ``test``), never the library.
EMULATOR_STACK = ("starlette", "uvicorn")


def emulator_missing() -> str | None:
    """One line saying how to install the emulator's server stack, or ``None`` when it is installed."""
    from importlib.util import find_spec

    missing = []
    for name in EMULATOR_STACK:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if not missing:
        return None
    return f'the emulator needs {" and ".join(missing)}: pip install "deepseek-magic[emulator]"'
