"""Output of validate and plan: text, JSON, JSON Lines, tables and GitHub annotations."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import groupby
from operator import attrgetter
from typing import Any

from runner.diagnostics import count
from runner.jsonnum import add
from runner.ledger import COMPLETED, FAILED_STATES
from runner.manifest import CheckedFile
from runner.plan import Task


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# One encoder for all calls: json.dumps with options builds a new encoder every time.
# allow_nan=False: documents are standard JSON (runner/jsonnum.py); Infinity fails loudly.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, allow_nan=False)


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def diagnostics_lines(checked: Sequence[CheckedFile], fmt: str) -> list[str]:
    diags = [d for cf in checked for d in cf.diagnostics]
    if fmt == "github":
        return [d.github() for d in diags]
    return [d.text() for d in diags]


def validation_summary(checked: Sequence[CheckedFile]) -> str:
    diags = [d for cf in checked for d in cf.diagnostics]
    bad = sum(1 for cf in checked if not cf.ok)
    return (
        f"{plural(len(checked), 'file')} checked: {len(checked) - bad} valid, {bad} invalid, "
        f"{plural(count(diags, 'error'), 'error')}, "
        f"{plural(count(diags, 'warning'), 'warning')}"
    )


def validation_json(checked: Sequence[CheckedFile], valid: bool, skipped: Sequence[str] = ()) -> str:
    return dumps(
        {
            "error": None,  # as every --format json document: an object when it failed
            "valid": valid,
            "skipped": list(skipped),  # YAML files in folders that are not manifests
            "files": [
                {
                    "file": cf.file,
                    "valid": cf.ok,
                    "manifest": cf.manifest.name if cf.manifest else None,
                    "diagnostics": [d.as_json() for d in cf.diagnostics],
                }
                for cf in checked
            ],
        }
    )


def plan_json(tasks: Sequence[Task], checked: Sequence[CheckedFile]) -> str:
    return json.dumps(
        {
            "error": None,
            "tasks": [t.as_json() for t in tasks],
            "manifests": manifest_summaries(tasks, checked),
        },
        ensure_ascii=False,
        sort_keys=True,
        indent=2,
        allow_nan=False,
    )


def manifest_summaries(tasks: Sequence[Task], checked: Sequence[CheckedFile]) -> list[dict[str, Any]]:
    per_tasks: Counter[str] = Counter()
    per_pixels: Counter[str] = Counter()
    for t in tasks:
        per_tasks[t.manifest] += 1
        per_pixels[t.manifest] += t.pixels[0] * t.pixels[1]
    out = []
    for cf in checked:
        if cf.manifest is None:
            continue
        name = cf.manifest.name
        out.append(
            {
                "manifest": name,
                "file": cf.file,
                "tasks": per_tasks[name],
                "pixels": per_pixels[name],
                "warnings": count(cf.diagnostics, "warning"),
            }
        )
    return out


def plan_table(tasks: Sequence[Task], checked: Sequence[CheckedFile]) -> list[str]:
    headers = ("OUT_TASK_ID", "MANIFEST", "PROMPT", "SIZE", "PIXELS")
    rows = [(t.out_task_id, t.manifest, t.prompt_id, t.size, f"{t.pixels[0]}x{t.pixels[1]}") for t in tasks]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]
    ]
    lines.append("")
    for s in manifest_summaries(tasks, checked):
        lines.append(
            f"{s['manifest']} ({s['file']}): {plural(s['tasks'], 'task')}, "
            f"{s['pixels'] / 1e6:.1f} Mpx delivered, {plural(s['warnings'], 'warning')}"
        )
    return lines


def _credits(value: float) -> str:
    # An integer past a float (a price of 1e400, added exactly) has no float to round.
    return f"{value:,}" if isinstance(value, int) else f"{value:,.0f}"


def run_summary_lines(summary: Any, ledger: Any, out_dir: Any) -> list[str]:
    s = summary
    lines = [
        f"imgbatch: {s.planned} planned: {s.completed} completed, {s.failed} failed, "
        f"{s.running} running, {s.unconfirmed} unconfirmed, {s.not_submitted} not submitted"
        + (f", {s.timed_out} timed out" if s.timed_out else "")
        + (f", {s.missing_images} without their images" if s.missing_images else ""),
        f"imgbatch: this run: {s.submitted} submitted, {s.adopted} adopted, {s.downloads} downloaded, "
        f"{_credits(s.credits_estimated)} credits estimated, {_credits(s.credits_used)} used, "
        f"{s.requests} requests",
    ]
    if s.throttled:
        lines.append(
            f"imgbatch: the service asked {s.throttled} times to slow down (429); "
            "imgbatch lowered its concurrency and rate and kept going"
        )
    if s.held_back or s.refusal:
        lines.append(f"imgbatch: stopped submitting: {s.refusal} ({plural(s.held_back, 'task')} held back)")
    # One line per task that is not done, saying what to do (the run's errors are in them).
    for line in s.todo[:50]:
        lines.append(f"imgbatch: not done: {line}")
    if len(s.todo) > 50:
        lines.append(f"imgbatch: ... and {len(s.todo) - 50} more not done ('imgbatch status' counts them)")
    if s.unresolved:
        lines.append(
            # Submitted-but-unconfirmed and acknowledged-but-unanswered alike: no usable answer.
            f"imgbatch: {s.unresolved} tasks got no usable answer from the service"
            f"{' (the service was unreachable)' if s.unreachable else ''}; "
            "rerun the same command: it asks before it submits, so nothing is paid twice"
        )
    lines.append(f"imgbatch: ledger {ledger}, images in {out_dir}")
    return lines


def status_rows(
    tasks: Sequence[Task],
    checked: Sequence[CheckedFile],
    records: dict[str, Any],
    verified: Callable[[dict[str, Any]], bool],
) -> list[dict[str, Any]]:
    """Counts per manifest. An image counts only if `verified` (its file is on disk with the
    recorded sha256); a completed task without all its images counts as `missing`."""
    rows: dict[str, dict[str, Any]] = {}
    for cf in checked:
        if cf.manifest is not None:
            rows[cf.manifest.name] = {
                "manifest": cf.manifest.name,
                "file": cf.file,
                "tasks": 0,
                "completed": 0,
                "failed": 0,
                "running": 0,
                "not_submitted": 0,
                "missing": 0,
                "credits_used": 0,
                "credits_estimated": 0,  # tasks paid for but not yet reporting credits_used
                "images": 0,
                "done": 0,
            }
    get = records.get
    # Tasks come grouped by manifest: each group is counted in local variables (a status of
    # 100,000 tasks is mostly this loop), then added to its manifest's row.
    for manifest, group in groupby(tasks, key=attrgetter("manifest")):
        n = completed = failed = running = not_submitted = missing = images = done = 0
        used_sum: float = 0
        estimated_sum: float = 0
        for t in group:
            n += 1
            record = get(t.out_task_id)
            if not record:
                not_submitted += 1
                continue
            status = record["status"]
            used = record.get("credits_used")
            if status == COMPLETED:
                completed += 1
                outputs: list[dict[str, Any]] = record.get("outputs") or []
                good = len([o for o in outputs if isinstance(o, dict) and verified(o)])
                images += good
                if outputs and good == len(outputs):
                    done += 1
                else:
                    missing += 1
            elif status in FAILED_STATES:
                failed += 1
            else:
                running += 1
                estimate = record.get("estimated_credits")
                if not used and isinstance(estimate, (int, float)):
                    # Paid and still running: the service reports 0 used until it ends.
                    try:
                        estimated_sum += estimate
                    except OverflowError:  # an integer price past a float plus a float one
                        estimated_sum = add(estimated_sum, estimate)
                    continue
            if isinstance(used, (int, float)):
                try:  # a plain += here: status of 100,000 tasks is mostly this loop
                    used_sum += used
                except OverflowError:
                    used_sum = add(used_sum, used)
        row = rows[manifest]
        row["tasks"] += n
        row["completed"] += completed
        row["failed"] += failed
        row["running"] += running
        row["not_submitted"] += not_submitted
        row["missing"] += missing
        row["images"] += images
        row["done"] += done
        row["credits_used"] = add(row["credits_used"], used_sum)
        row["credits_estimated"] = add(row["credits_estimated"], estimated_sum)
    return list(rows.values())


def status_table(rows: Sequence[dict[str, Any]], ledger: Any) -> list[str]:
    headers = (
        "MANIFEST",
        "TASKS",
        "COMPLETED",
        "FAILED",
        "RUNNING",
        "NOT SUBMITTED",
        "CREDITS",
        "IMAGES",
        "MISSING",
    )
    keys = (
        "manifest",
        "tasks",
        "completed",
        "failed",
        "running",
        "not_submitted",
        "credits_used",
        "images",
        "missing",
    )
    table = [headers] + [tuple(_cell(r, k) for k in keys) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return [*lines, "", f"ledger: {ledger}"]


def _cell(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if key == "credits_used" and row.get("credits_estimated"):
        # Running tasks are paid for too; until they report what they used, their estimate.
        return f"~{add(value, row['credits_estimated']):,}"
    return f"{value:,}" if isinstance(value, (int, float)) else str(value)
