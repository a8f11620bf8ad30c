"""Is a completed record's image really here? A file counts only if it exists at the path the
ledger records (relative to the ledger's folder) and has the recorded sha256 (the check
`status` uses, runner/download.py): a fresh clone without images, or a file edited since,
is not `done`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from runner.download import file_verified
from runner.ledger import COMPLETED, Record


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def output_path(output: dict[str, Any], ledger_dir: Path) -> Path | None:
    stored = output.get("path")
    if not isinstance(stored, str) or not stored:
        return None
    path = Path(stored)
    return path if path.is_absolute() else ledger_dir / path


def images_verified(record: Record, ledger_dir: Path) -> bool:
    """A completed record with at least one output, every output on disk as recorded."""
    outputs = record.get("outputs")
    if record.get("status") != COMPLETED or not isinstance(outputs, list) or not outputs:
        return False
    try:
        return all(isinstance(o, dict) and file_verified(o, ledger_dir) for o in outputs)
    except OSError:
        return False  # unreadable: not the image the ledger records
