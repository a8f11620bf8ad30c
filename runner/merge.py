"""Merging ledgers by out_task_id: shard ledgers of one CI regeneration, or two branches (as
git's merge driver). Deterministic and byte-stable: the result depends only on the set of
records given, never on their order, and is written sorted like any ledger.

For each id the more advanced record wins: a later attempt over an earlier one, then
completed over failed over running over submitting, then more downloaded images, then more
fields known. With a base (the common ancestor), a record present in the base and missing
from one side was pruned there and stays deleted, unless another side changed it (money was
spent on it: a paid record is never dropped silently). One id completed with different
images on two sides is a real conflict: listed, exit 1. So is one id recorded against two
services (a ledger belongs to one service, and the same out_task_id on two services is two
tasks, both paid), whatever its images; a record without an endpoint (written before
imgbatch recorded them) is a real service's, the one whose run later claimed it, so it
conflicts only with the embedded sandbox's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.atomic import replace_file
from runner.errors import InputError
from runner.ledger import COMPLETED, FAILED_STATES, SUBMITTING, Ledger, Record
from runner.ledgerguard import SANDBOX_ENDPOINT
from runner.ledgerline import serialize

_RUNNING_RANK = {SUBMITTING: 0, "pending": 1}  # any other running status ranks 2


@dataclass
class Merged:
    records: dict[str, Record]
    conflicts: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # deleted on one side, changed on another
    deleted: int = 0
    services: int = 0  # of the conflicts, those of records of different services

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


# What a record without an endpoint is called in messages.
_LEGACY = "no endpoint (written before imgbatch recorded them: a real service's)"


def _endpoint(record: Record) -> str | None:
    endpoint = record.get("endpoint")
    return str(endpoint) if endpoint else None


def _apart(endpoints: set[str | None]) -> bool:
    """Whether these endpoints cannot share one ledger. A record without one was written by a
    real service and claimed by the first real run since, so it goes with any real endpoint;
    never with the embedded sandbox, which refuses such records."""
    known = {e for e in endpoints if e is not None}
    return len(known) > 1 or (None in endpoints and SANDBOX_ENDPOINT in known)


def _service_conflict(out_task_id: str, candidates: Sequence[tuple[str, Record]]) -> str | None:
    if not _apart({_endpoint(r) for _, r in candidates}):
        return None
    sides: dict[str | None, list[str]] = {}
    for source, r in candidates:
        sides.setdefault(_endpoint(r), []).append(source)
    shown = "; ".join(
        f"{', '.join(sources)}: {endpoint or _LEGACY}"
        for endpoint, sources in sorted(sides.items(), key=lambda item: item[0] or "")
    )
    return f"{out_task_id}: recorded against different services ({shown}); a ledger belongs to one service"


def merge(ledgers: Sequence[tuple[str, dict[str, Record]]], base: dict[str, Record] | None) -> Merged:
    result = Merged({})
    endpoints: set[str | None] = set()  # of the ids not already in a conflict of services
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
        # Two services for one id is the graver conflict: one line, whatever the images say.
        service_conflict = _service_conflict(key, present)
        if service_conflict:
            result.conflicts.append(service_conflict)
            result.services += 1
        else:
            conflict = _conflict(key, present)
            if conflict:
                result.conflicts.append(conflict)
            endpoints.update(_endpoint(r) for _, r in present)
        result.records[key] = winner([r for _, r in present])
    # A ledger belongs to one service (runs refuse a ledger stamped with another endpoint):
    # records of two services cannot be merged into one, even under different ids.
    if _apart(endpoints):
        shown = sorted(e for e in endpoints if e is not None)
        if None in endpoints and SANDBOX_ENDPOINT in shown:
            shown.append(_LEGACY)
        result.conflicts.append(
            f"records of different services ({', '.join(shown)}): keep one ledger per service"
        )
        result.services += 1
    return result


def read(path: Path) -> dict[str, Record]:
    if not path.is_file():
        raise InputError(f"{path}: no such ledger file", hint="give the ledgers to merge")
    return Ledger.open(path, write=False).records


def merge_files(out: Path, ledgers: Sequence[Path], base: Path | None) -> Merged:
    """Read every input first (OUT may be one of them, as with git's %A), then write OUT."""
    inputs = [(str(p), read(p)) for p in ledgers]
    merged = merge(inputs, read(base) if base is not None else None)
    try:
        replace_file(out, merged.text())
    except OSError as e:
        raise InputError(
            f"{out}: cannot write the merged ledger: {e.strerror or e}",
            hint="nothing was changed; free space or give another --output",
        ) from None
    return merged
