"""``python -m deepseek_magic.emulator``: serve the emulator until Ctrl-C."""

from __future__ import annotations

from deepseek_magic.core.extras import emulator_missing

_problem = emulator_missing()
if _problem:
    raise SystemExit(f"python -m deepseek_magic.emulator: {_problem}")

from deepseek_magic.emulator.cli import main  # noqa: E402 - only once the server stack is known to be there

raise SystemExit(main())
