"""Is a completed record's image really here? A file counts only if it exists at the path the
ledger records (relative to the ledger's folder) and has the recorded sha256: a fresh clone
without images, or a file edited since, is not `done`. One check for run, status, plan and
report; light to import (no httpx, no Pillow)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from runner.ledger import COMPLETED, Record

# Digests by (path, inode, size, mtime): a run checks each file several times, hashing it once.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def sha256_of(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def output_path(output: dict[str, Any], ledger_dir: Path) -> Path | None:
    stored = output.get("path")
    if not isinstance(stored, str) or not stored:
        return None
    path = Path(stored)
    return path if path.is_absolute() else ledger_dir / path


def has_file(output: dict[str, Any], base: Path) -> bool:
    """The output was downloaded and its file is still there (paths are relative to `base`)."""
    path = output_path(output, base)
    return path is not None and path.is_file()


def file_verified(output: dict[str, Any], base: Path) -> bool:
    """The output's file exists and has the sha256 recorded for it."""
    path = output_path(output, base)
    if path is None or not isinstance(output.get("sha256"), str):
        return False
    try:
        return path.is_file() and sha256_of(path) == str(output["sha256"])
    except OSError:
        return False  # unreadable: not the image the ledger records


def images_verified(record: Record, ledger_dir: Path) -> bool:
    """A completed record with at least one output, every output on disk as recorded."""
    outputs = record.get("outputs")
    if record.get("status") != COMPLETED or not isinstance(outputs, list) or not outputs:
        return False
    try:
        return all(isinstance(o, dict) and file_verified(o, ledger_dir) for o in outputs)
    except OSError:
        return False  # unreadable: not the image the ledger records
