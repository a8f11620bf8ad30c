"""imgbatch prune: orphaned ledger records and their images; removed only with --apply."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runner import prune as pruning
from runner.commands._common import echo_lines, load_plan
from runner.errors import EXIT_OK
from runner.ledger import Ledger


def prune(paths: Sequence[str], ledger_path: Path, out_dir: Path, apply: bool) -> int:
    _, tasks = load_plan(paths)
    # --apply takes the ledger's lock: a run in progress on it makes prune refuse (exit 4).
    ledger = Ledger.open(ledger_path, write=apply)
    try:
        orphans = pruning.find_orphans(tasks, ledger, out_dir)
        removed = pruning.apply(ledger, orphans) if apply else 0
    finally:
        ledger.close(compact=False)
    echo_lines(pruning.lines(orphans, apply, removed))
    return EXIT_OK
