"""Reading and writing the user's files (session save/load) without surprises.

Why a module: a path typed into ``%deepseek save PATH`` may name a FIFO, a
device, a directory or a symlink. ``os.replace`` onto such a path silently
swaps it for a regular file (a symlink loses its target's update, a FIFO its
reader), and ``open()`` on a FIFO blocks the kernel until someone writes. So:

* writes go atomically into regular files only: a temporary file beside the
  *final* target (symlinks resolved), then ``os.replace``; the link stays a
  link and its target gets the new content, an existing file keeps its mode;
* anything else at the path (FIFO, device, socket, directory) is refused with
  one line, before anything is written;
* reads open with ``O_NONBLOCK`` and check ``fstat`` on the open descriptor,
  so a FIFO is refused at once instead of blocking, and the file checked is
  the file read.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from deepseek_magic.core.errors import DeepSeekError


class FileKindError(DeepSeekError):
    """The path names something that is not a regular file (a FIFO, a device, a directory)."""


def describe_kind(mode: int) -> str:
    """``mode``'s file type in words, for the one-line refusal."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def write_target(path: str | os.PathLike[str]) -> tuple[Path, int | None]:
    """The regular file a write to ``path`` must replace (symlinks followed), and its current mode.

    Raises :class:`FileKindError` when something other than a regular file is there.
    """
    given = Path(path).expanduser()
    target = Path(os.path.realpath(given))
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target, None
    if not stat.S_ISREG(info.st_mode):
        raise FileKindError(f"{given} is {describe_kind(info.st_mode)}, not a regular file; nothing was written")
    return target, stat.S_IMODE(info.st_mode)


def write_atomically(path: str | os.PathLike[str], pieces: Iterable[str]) -> Path:
    """Write ``pieces`` (UTF-8) to ``path`` atomically; returns the path as given.

    A crash leaves the old content intact; a new file is private (0600),
    an existing one keeps its mode.
    """
    given = Path(path).expanduser()
    target, mode = write_target(given)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for piece in pieces:
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return given


def open_regular(path: str | os.PathLike[str]) -> TextIO:
    """``path`` opened for reading as UTF-8 text; refuses (without blocking) anything but a regular file."""
    given = Path(path).expanduser()
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    descriptor = os.open(given, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise FileKindError(f"{given} is {describe_kind(mode)}, not a regular file; nothing was loaded")
        return os.fdopen(descriptor, encoding="utf-8")
    except BaseException:
        os.close(descriptor)
        raise
