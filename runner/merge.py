"""Merging ledgers by out_task_id: shard ledgers of one CI regeneration, or two branches (as
git's merge driver). Deterministic and byte-stable: the result depends only on the set of
records given, never on their order, and is written sorted like any ledger.

For each id the more advanced record wins: a later attempt over an earlier one, then
completed over failed over running over submitting, then more downloaded images, then more
fields known. With a base (the common ancestor), a record present in the base and missing
from one side was pruned there and stays deleted, unless another side changed it (money was
spent on it: a paid record is never dropped silently). One id completed with different
images on two sides is a real conflict: listed, exit 1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import InputError
from runner.ledger import COMPLETED, FAILED_STATES, SUBMITTING, Ledger, Record, atomic_write, serialize

_RUNNING_RANK = {SUBMITTING: 0, "pending": 1}  # any other running status ranks 2


@dataclass
class Merged:
    records: dict[str, Record]
    conflicts: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # deleted on one side, changed on another
    deleted: int = 0

    def text(self) -> str:
        return "".join(serialize(self.records[k]) for k in sorted(self.records))


def status_rank(status: Any) -> int:
    if status == COMPLETED:
        return 4
    if status in FAILED_STATES:
        return 3
    return _RUNNING_RANK.get(status, 2)


def _images(record: Record) -> list[Any]:
    outputs = record.get("outputs")
    if not isinstance(outputs, list):
        return []
    return [o.get("sha256") for o in outputs if isinstance(o, dict)]


def advancement(record: Record) -> tuple[int, int, int, int]:
    attempt = record.get("attempt")
    return (
        attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 1,
        status_rank(record.get("status")),
        sum(1 for sha in _images(record) if sha),
        sum(1 for v in record.values() if v is not None),
    )


def winner(records: Sequence[Record]) -> Record:
    """The most advanced record; two different records equally advanced are told apart by
    their serialized text, so the choice never depends on the order of the inputs."""
    distinct: list[Record] = []
    for r in records:
        if not any(r == d for d in distinct):  # shards mostly repeat the base's records
            distinct.append(r)
    if len(distinct) == 1:
        return distinct[0]
    ranks = [advancement(r) for r in distinct]
    top = max(ranks)
    tied = [r for r, rank in zip(distinct, ranks, strict=True) if rank == top]
    return tied[0] if len(tied) == 1 else max(tied, key=serialize)


def _conflict(out_task_id: str, candidates: Sequence[tuple[str, Record]]) -> str | None:
    done: dict[tuple[Any, ...], str] = {}
    for source, r in candidates:
        shas = _images(r)
        if r.get("status") == COMPLETED and shas and all(shas):
            done.setdefault(tuple(shas), source)
    if len(done) < 2:
        return None
    sides = "; ".join(f"{src}: sha256 {', '.join(s[:12] for s in shas)}" for shas, src in done.items())
    return f"{out_task_id}: completed with different images ({sides})"


def merge(ledgers: Sequence[tuple[str, dict[str, Record]]], base: dict[str, Record] | None) -> Merged:
    result = Merged({})
    ids = set().union(*(records for _, records in ledgers))
    if base is not None:
        ids |= set(base)
    for key in sorted(ids):
        present = [(src, recs[key]) for src, recs in ledgers if key in recs]
        if base is not None and key in base and len(present) < len(ledgers):
            changed = [(src, r) for src, r in present if r != base[key]]
            if not changed:
                result.deleted += 1
                continue
            result.kept.append(
                f"{key}: deleted on one side, changed on {', '.join(s for s, _ in changed)}: kept"
            )
            present = changed
        if not present:
            continue
        conflict = _conflict(key, present)
        if conflict:
            result.conflicts.append(conflict)
        result.records[key] = winner([r for _, r in present])
    # A ledger belongs to one service (runs refuse a ledger stamped with another endpoint):
    # records of two services cannot be merged into one.
    endpoints = sorted({str(r["endpoint"]) for r in result.records.values() if r.get("endpoint")})
    if len(endpoints) > 1:
        result.conflicts.append(
            f"records of different services ({', '.join(endpoints)}): keep one ledger per service"
        )
    return result


def read(path: Path) -> dict[str, Record]:
    if not path.is_file():
        raise InputError(f"{path}: no such ledger file", hint="give the ledgers to merge")
    return Ledger.open(path, write=False).records


def merge_files(out: Path, ledgers: Sequence[Path], base: Path | None) -> Merged:
    """Read every input first (OUT may be one of them, as with git's %A), then write OUT."""
    inputs = [(str(p), read(p)) for p in ledgers]
    merged = merge(inputs, read(base) if base is not None else None)
    atomic_write(out, merged.text())
    return merged
