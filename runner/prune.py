"""Prune: ledger records no manifest asks for any more, and their image files. The files go
first, then the ledger is rewritten atomically without the records: a crash in between leaves
records whose files are gone, which the next prune finds and finishes."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from runner.ledger import Ledger, Record
from runner.plan import Task
from runner.verify import output_path


@dataclass
class Orphan:
    record: Record
    files: list[Path] = field(default_factory=list)  # inside --out: removed with --apply
    outside: list[Path] = field(default_factory=list)  # elsewhere: listed, never removed

    @property
    def out_task_id(self) -> str:
        return str(self.record["out_task_id"])


def find_orphans(tasks: list[Task], ledger: Ledger, out_dir: Path) -> list[Orphan]:
    planned = {t.out_task_id for t in tasks}
    base = ledger.path.parent
    out_real = Path(os.path.realpath(out_dir))
    orphans = []
    for key in sorted(ledger.records):
        if key in planned:
            continue
        orphan = Orphan(ledger.records[key])
        for output in ledger.records[key].get("outputs") or []:
            path = output_path(output, base) if isinstance(output, dict) else None
            if path is None or not (path.exists() or path.is_symlink()):
                continue
            inside = Path(os.path.realpath(path.parent)).is_relative_to(out_real)
            (orphan.files if inside else orphan.outside).append(path)
        orphans.append(orphan)
    return orphans


def apply(ledger: Ledger, orphans: list[Orphan]) -> int:
    """Remove the orphans' files inside --out, then their records; returns files removed."""
    removed = 0
    for orphan in orphans:
        for path in orphan.files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    for orphan in orphans:
        ledger.records.pop(orphan.out_task_id, None)
    if orphans:
        ledger.dirty = True
        ledger.compact()
    return removed


def lines(orphans: list[Orphan], applied: bool, files_removed: int) -> list[str]:
    out = []
    for o in orphans:
        r = o.record
        out.append(f"- {o.out_task_id}  {r.get('manifest', '?')}/{r.get('prompt_id', '?')}  {r['status']}")
        out.extend(f"    {p}" for p in o.files)
        out.extend(f"    {p} (outside --out: kept)" for p in o.outside)
    files = sum(len(o.files) for o in orphans)
    if not orphans:
        out.append("Nothing to prune: every ledger record belongs to a manifest given.")
    elif applied:
        out.append(f"Pruned {len(orphans)} records and {files_removed} image files.")
    else:
        out.append(
            f"{len(orphans)} orphaned records, {files} image files. Nothing was changed: "
            "--apply removes them (check that every manifest was given)."
        )
    return out
