"""A plan against the ledger, as Terraform plans against its state: what a run would do with
each task (create, download, wait for, leave failed, or nothing) and which ledger records no
manifest asks for any more (orphaned)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.estimate import credits_per_task, estimate_credits
from runner.jsonnum import figure
from runner.ledger import COMPLETED, FAILED_STATES, SUBMITTING, Record
from runner.plan import Task
from runner.shard import Shard
from runner.verify import images_verified, one_moment

# Listed in this order; the marks read like a diff of the images against the manifests.
ACTIONS = ("create", "download", "running", "failed", "orphaned", "done")
MARKS = {"create": "+", "download": ">", "running": "~", "failed": "!", "orphaned": "-", "done": "="}
# A run acts on these; `plan --exit-code` exits 1 when any is present.
PENDING_WORK = ("create", "download", "running")


@dataclass
class Item:
    action: str
    out_task_id: str
    manifest: str
    prompt_id: str
    size: str
    pixels: tuple[int, int] | None
    status: str | None  # the ledger's status, None when not in the ledger
    note: str = ""
    task: Task | None = None
    record: Record | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "out_task_id": self.out_task_id,
            "manifest": self.manifest,
            "prompt_id": self.prompt_id,
            "size": self.size,
            "pixels": list(self.pixels) if self.pixels else None,
            "status": self.status,
            "note": self.note,
        }


@dataclass
class LedgerPlan:
    ledger: Path
    items: list[Item]
    create_credits: float  # the tasks to create
    credits_per_task: float
    # Records left `submitting` (listed as running): paid or not, the outcome is unknown; a run
    # sends them again only if the service does not know them, so it counts them too.
    submitting_credits: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    submitting: int = 0

    def __post_init__(self) -> None:
        self.counts = Counter(i.action for i in self.items)
        self.submitting = sum(1 for i in self.items if i.action == "running" and i.status == SUBMITTING)

    @property
    def credits(self) -> float:
        """What `run` counts against --max-credits: the tasks to create and those left submitting."""
        return self.create_credits + self.submitting_credits

    @property
    def has_work(self) -> bool:
        return any(self.counts[a] for a in PENDING_WORK)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {a: self.counts[a] for a in ACTIONS}
        # Estimates at the prices seen: null when a price past a float makes them so (jsonnum.py).
        out["credits"] = figure(self.credits)
        out["create_credits"] = figure(self.create_credits)
        out["submitting"] = self.submitting
        out["submitting_credits"] = figure(self.submitting_credits)
        created = [i.pixels for i in self.items if i.action == "create" and i.pixels]
        out["pixels"] = sum(w * h for w, h in created)
        return out


def plan_against(
    tasks: list[Task],
    records: Mapping[str, Record],
    ledger_path: Path,
    ledger_dir: Path,
    *,
    retry_failed: bool = False,
    shard: Shard | None = None,
) -> LedgerPlan:
    """ledger_dir: the folder image paths are relative to (the real ledger's, symlinks resolved)."""
    with one_moment():
        items = [_classify(t, records.get(t.out_task_id), ledger_dir, retry_failed) for t in tasks]
    planned = {t.out_task_id for t in tasks}
    for key in sorted(records):
        if key not in planned and (shard is None or shard.contains(key)):
            items.append(_orphan(records[key]))
    order = {a: i for i, a in enumerate(ACTIONS)}
    items.sort(key=lambda i: (order[i.action], i.out_task_id))
    # What `run` counts against its limits: new tasks, and `submitting` records (sent again if
    # the service turns out not to know them), shown apart so the figures add up.
    to_create = [i.task for i in items if i.task is not None and i.action == "create"]
    unknown = [i.task for i in items if i.task and i.action == "running" and i.status == SUBMITTING]
    return LedgerPlan(
        ledger_path,
        items,
        estimate_credits(to_create, records),
        credits_per_task(records.values()),
        submitting_credits=estimate_credits(unknown, records),
    )


def _classify(task: Task, record: Record | None, ledger_dir: Path, retry_failed: bool) -> Item:
    def item(action: str, note: str = "") -> Item:
        status = record["status"] if record else None
        return Item(
            action,
            task.out_task_id,
            task.manifest,
            task.prompt_id,
            task.size,
            task.pixels,
            status,
            note,
            task,
            record,
        )

    if record is None:
        return item("create")
    status = record["status"]
    if status in FAILED_STATES:
        if retry_failed:
            return item("create", f"{status} before; --retry-failed resubmits it")
        return item("failed", _one_line(record.get("error")) or status)
    if status == COMPLETED:
        if images_verified(record, ledger_dir):
            return item("done")
        return item("download", "completed; image file missing or not as recorded")
    return item("running", status)


def _orphan(record: Record) -> Item:
    pixels = record.get("pixels")
    wh = (int(pixels[0]), int(pixels[1])) if isinstance(pixels, list) and len(pixels) == 2 else None
    return Item(
        "orphaned",
        record["out_task_id"],
        str(record.get("manifest", "?")),
        str(record.get("prompt_id", "?")),
        str(record.get("size", "?")),
        wh,
        record["status"],
        "",
        None,
        record,
    )


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())[:200] if value else ""


# --- output ------------------------------------------------------------------------------


def text_lines(lp: LedgerPlan) -> list[str]:
    """Terraform-like: one marked line per task, then a summary line."""
    lines = [f"imgbatch plan against {lp.ledger}", ""]
    rows = [
        (
            f"  {MARKS[i.action]} {i.action}",
            i.out_task_id,
            f"{i.manifest}/{i.prompt_id}",
            i.size,
            f"{i.pixels[0]}x{i.pixels[1]}" if i.pixels else "",
            i.note,
        )
        for i in lp.items
    ]
    widths = [max((len(r[c]) for r in rows), default=0) for c in range(5)]
    for r in rows:
        cells = [r[c].ljust(widths[c]) for c in range(5)]
        lines.append("  ".join([*cells, r[5]]).rstrip())
    if rows:
        lines.append("")
    lines.append(summary_line(lp))
    return lines


def summary_line(lp: LedgerPlan) -> str:
    c = lp.counts
    if not lp.has_work:
        head = "No changes. Every planned image is on disk as the ledger records it."
    else:
        head = (
            f"Plan: {c['create']} to create (~{lp.create_credits:,.0f} credits at up to "
            f"{lp.credits_per_task:,.0f} a task), {c['download']} to download, {c['running']} running"
        )
        if lp.submitting:
            head += (
                f", of which {lp.submitting} left submitting (outcome unknown: ~{lp.submitting_credits:,.0f} "
                f"credits more if the service does not know them; a run counts ~{lp.credits:,.0f} against "
                "--max-credits, 'imgbatch status --refresh' asks about them without new spend)"
            )
        head += "."
    tail = f"{c['done']} done, {c['failed']} failed, {c['orphaned']} orphaned"
    if c["orphaned"]:
        tail += " (in the ledger, in no manifest given: 'imgbatch prune' lists and removes them)"
    return f"{head} {tail}."


def json_text(lp: LedgerPlan, manifests: Iterable[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "error": None,
            "ledger": str(lp.ledger),
            "summary": lp.summary(),
            "items": [i.as_json() for i in lp.items],
            "manifests": list(manifests),
        },
        ensure_ascii=False,
        sort_keys=True,
        indent=2,
        allow_nan=False,
    )


def jsonl_lines(lp: LedgerPlan) -> list[str]:
    out = []
    for i in lp.items:
        line = i.task.as_json() if i.task is not None else {"out_task_id": i.out_task_id}
        line.update(i.as_json())
        out.append(json.dumps(line, ensure_ascii=False, sort_keys=True, allow_nan=False))
    return out
