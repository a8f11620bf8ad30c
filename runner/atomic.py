"""Files written whole or not at all: a temp file in the same folder, flushed and fsynced,
then moved into place. A crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path


def replace_file(path: Path, text: str) -> None:
    """Write `text` to `path`, replacing what is there. Raises OSError."""
    _place(path, text, os.replace)


def create_file(path: Path, text: str) -> bool:
    """Write `text` to `path` only if nothing is there; False if something is. Raises OSError."""
    try:
        # link() refuses an existing name, so a file that appears meanwhile is never replaced.
        _place(path, text, os.link)
    except FileExistsError:
        return False
    return True


def _place(path: Path, text: str, move: Callable[[Path, Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        move(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The new name is durable only once its folder is; some systems cannot open a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
