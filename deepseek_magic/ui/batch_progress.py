"""Progress of a batch: rows done of total, errors, tokens and cost so far, ETA.

Two reporters with the same three methods (``start``, ``update``, ``close``):
a widget (an ``IntProgress`` bar and an HTML label) inside a kernel, and one
``\\r``-rewritten line of text (tqdm-style) elsewhere. The batch calls them
from the thread that waits for it (the kernel's main thread), never from the
event-loop thread, so widget traffic stays where ipywidgets expects it.

Why throttled: the batch looks in every 0.1 s, and a widget update is a comm
message with the full state; at most ~5 redraws a second is plenty for a bar,
and the last state is always drawn on ``close``.

The ETA counts only rows that had to be sent: rows answered from the cache or
kept from an interrupted run finish at once and would make it far too hopeful.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any, TextIO

from deepseek_magic.batch import BatchPreview
from deepseek_magic.ui.choose import in_kernel
from deepseek_magic.ui.throttle import Throttle

#: Seconds between redraws (about 5 a second).
REDRAW_INTERVAL = 0.2
BAR_WIDTH = 20


def format_duration(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Figures:
    """The numbers both reporters show, and the ETA worked out from them."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.preview: BatchPreview | None = None
        self.done = 0
        self.total = 0
        self.errors = 0
        self.tokens = 0
        self.cost = 0.0
        self._base_done: int | None = None
        self._base_time = self.started

    def start(self, preview: BatchPreview) -> None:
        self.preview = preview
        self.total = preview.total

    def update(self, done: int, total: int, errors: int, tokens: int, cost: float) -> None:
        if self._base_done is None:  # rows done at the first report came from the cache or a previous run
            self._base_done = done
            self._base_time = time.monotonic()
        self.done, self.total, self.errors, self.tokens, self.cost = done, total, errors, tokens, cost

    @property
    def eta(self) -> float | None:
        base = self._base_done if self._base_done is not None else 0
        sent = self.done - base
        if sent <= 0 or self.done >= self.total:
            return None
        rate = sent / max(time.monotonic() - self._base_time, 1e-9)
        return (self.total - self.done) / rate

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def parts(self, *, finished: bool = False) -> list[str]:
        parts = [f"{self.done:,}/{self.total:,} rows"]
        if self.errors:
            parts.append(f"{self.errors:,} error{'s' if self.errors != 1 else ''}")
        parts.append(f"{self.tokens:,} tokens")
        parts.append(f"${self.cost:,.4f}")
        parts.append(format_duration(self.elapsed))
        eta = None if finished else self.eta
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return parts


class TextBatchProgress:
    """One line, rewritten with ``\\r``: ``batch [####------] 37/100 rows · 2 errors · … · ETA 0:08``."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = REDRAW_INTERVAL) -> None:
        self.out = stream if stream is not None else sys.stdout
        self.figures = _Figures()
        self._throttle = Throttle(interval)
        self._width = 0
        self._closed = False
        self._drawn = False

    def start(self, preview: BatchPreview) -> None:
        self.figures.start(preview)
        self.out.write(f"batch: {preview.describe()}\n")
        self.out.flush()

    def update(self, done: int, total: int, errors: int, tokens: int, cost: float) -> None:
        self.figures.update(done, total, errors, tokens, cost)
        if self._throttle.due():
            self._draw()

    def _line(self, *, finished: bool = False) -> str:
        figures = self.figures
        filled = BAR_WIDTH * figures.done // figures.total if figures.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"batch [{bar}] " + " · ".join(figures.parts(finished=finished))

    def _draw(self, *, finished: bool = False) -> None:
        line = self._line(finished=finished)
        padding = " " * max(self._width - len(line), 0)  # wipe what a longer previous line left behind
        self._width = len(line)
        self.out.write("\r" + line + padding)
        self.out.flush()
        self._drawn = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._drawn and self.figures.total == 0:
            return  # never started (e.g. refused before sending): leave no empty bar behind
        stopped = self.figures.done < self.figures.total
        self._draw(finished=True)
        self.out.write(" (stopped)\n" if stopped else "\n")
        self.out.flush()


class WidgetBatchProgress:
    """An ``IntProgress`` bar with an HTML label, displayed on ``start``.

    ``display`` is injectable for tests (and for callers that place the
    widget themselves); it defaults to IPython's.
    """

    def __init__(self, *, display: Any = None, interval: float = REDRAW_INTERVAL) -> None:
        import ipywidgets as widgets

        self.figures = _Figures()
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="batch", bar_style="info")
        self.label = widgets.HTML(value="")
        self.box = widgets.HBox([self.bar, self.label])
        self._display = display
        self._throttle = Throttle(interval)
        self._shown = False
        self._closed = False

    def _show(self) -> None:
        if self._shown:
            return
        self._shown = True
        if self._display is not None:
            self._display(self.box)
        else:
            from IPython.display import display

            display(self.box)

    def start(self, preview: BatchPreview) -> None:
        self.figures.start(preview)
        self.bar.max = max(preview.total, 1)
        self.label.value = html.escape(preview.describe())
        self._show()

    def update(self, done: int, total: int, errors: int, tokens: int, cost: float) -> None:
        self.figures.update(done, total, errors, tokens, cost)
        self._show()
        if self._throttle.due():
            self._draw()

    def _draw(self, *, finished: bool = False) -> None:
        figures = self.figures
        with self.bar.hold_sync():
            self.bar.max = max(figures.total, 1)
            self.bar.value = figures.done
        self.label.value = html.escape(" · ".join(figures.parts(finished=finished)))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._shown:
            return
        figures = self.figures
        self._draw(finished=True)
        if figures.done < figures.total:
            self.bar.bar_style = "danger"
            self.label.value += " · stopped"
        else:
            self.bar.bar_style = "warning" if figures.errors else "success"

    def __repr__(self) -> str:
        """What frontends without widgets show instead of the bar."""
        return "batch " + " · ".join(self.figures.parts())


def make_progress(
    shell: Any = None, *, view: str = "auto", stream: TextIO | None = None
) -> TextBatchProgress | WidgetBatchProgress:
    """The widget reporter inside a kernel (``view`` ``auto`` or ``widget``), the text one otherwise."""
    if view != "text" and (view == "widget" or (shell is not None and in_kernel(shell))):
        try:
            return WidgetBatchProgress()
        except ImportError:
            pass
    return TextBatchProgress(stream)
