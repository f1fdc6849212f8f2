"""``python -m deepseek_magic.emulator``: serve the emulator until Ctrl-C."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
