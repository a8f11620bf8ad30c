"""Where downloads are written: the folder checked writable before anything is paid for,
the names of partial downloads, and the clean-up of those a killed run left."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from runner.atomic import remove_dead_temps
from runner.errors import InputError

# `.<stem>.<pid>.<8 hex>.part` (part_path) and the write probe below.
_PART = re.compile(r"\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.part")
_PROBE = re.compile(r"\.imgbatch-write-test\.(?P<pid>\d+)\.[0-9a-f]{8}")

SPACE_HINT = "free space or fix permissions, then rerun: paid tasks are fetched, not paid again"


def part_path(out_dir: Path, stem: str) -> Path:
    """A temp file unique to this process and attempt, so runs sharing a folder never write
    into each other's files, and a dead run's are known by its pid."""
    return out_dir / f".{stem}.{os.getpid()}.{secrets.token_hex(4)}.part"


def prepare_out_dir(out_dir: Path) -> None:
    """Make sure images can be written to `out_dir` before anything is paid for, and remove
    the partial downloads of runs a kill cut short (their pid no longer runs; a run sharing
    the folder is alive, so its files stay)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_dead_temps(out_dir, _PART, _PROBE)
        probe = out_dir / f".imgbatch-write-test.{os.getpid()}.{secrets.token_hex(4)}"
        with open(probe, "wb") as f:
            f.write(b"ok")
        probe.unlink()
    except OSError as e:
        raise InputError(
            f"--out {out_dir}: cannot write images there ({e.strerror or e})",
            hint="give a writable folder with --out; nothing was submitted",
        ) from None


def relative_to(path: Path, base: Path) -> str:
    """A path as the ledger records it: relative to the ledger's folder where it can be."""
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return str(path.resolve())
