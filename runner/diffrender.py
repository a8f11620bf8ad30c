"""A task-level diff as text (terminal), markdown (a pull-request comment) or JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from runner.diffing import Change, Diff
from runner.jsonnum import figure
from runner.plan import Task

COMMENT_MARKER = "<!-- imgbatch-diff -->"  # lets CI find and update its own PR comment
MAX_LISTED = 50  # per markdown section: a PR comment holds at most 65,536 characters


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def spend_phrase(d: Diff) -> str:
    return (
        f"a run would submit {_plural(len(d.spend_tasks), 'task')}, ~{d.credits:,.0f} credits, "
        f"{d.pixels / 1e6:.1f} Mpx delivered"
    )


def summary_line(d: Diff) -> str:
    if d.empty:
        return f"No changes: the same {_plural(d.unchanged, 'task')}."
    return (
        f"{_plural(len(d.changed), 'changed prompt')}, {len(d.added)} added, {len(d.removed)} removed, "
        f"{d.unchanged} unchanged tasks; {spend_phrase(d)}."
    )


def _unpaired(d: Diff) -> tuple[list[Task], list[Task]]:
    paired = d.paired_ids()
    return (
        [t for t in d.added if t.out_task_id not in paired],
        [t for t in d.removed if t.out_task_id not in paired],
    )


def text_lines(d: Diff) -> list[str]:
    lines = [f"imgbatch diff: {d.old_label} -> {d.new_label}"]
    for c in d.changed:
        lines.append(f"~ {c.manifest}/{c.prompt_id}: {_what_changed(c)}")
        if c.old_text != c.new_text:
            lines.extend(f"    - {line}" for line in c.old_text.splitlines() or [""])
            lines.extend(f"    + {line}" for line in c.new_text.splitlines() or [""])
        for o, n in c.pairs:
            size = o.size if o.size == n.size else f"{o.size} -> {n.size}"
            lines.append(f"    {size}  {o.out_task_id} -> {n.out_task_id}")
    added, removed = _unpaired(d)
    lines.extend(f"+ {t.manifest}/{t.prompt_id}  {t.size}  {t.out_task_id}" for t in added)
    lines.extend(f"- {t.manifest}/{t.prompt_id}  {t.size}  {t.out_task_id}" for t in removed)
    lines.append(summary_line(d))
    return lines


def _what_changed(c: Change) -> str:
    parts = []
    if c.old_text != c.new_text:
        parts.append("prompt text changed")
    if any(o.size != n.size for o, n in c.pairs):
        parts.append("size changed")
    return ", ".join(parts)


def markdown(d: Diff) -> str:
    out = [
        COMMENT_MARKER,
        f"### imgbatch diff: `{d.old_label}` → `{d.new_label}`",
        "",
    ]
    if d.empty:
        out.append(f"No changes: the same {_plural(d.unchanged, 'task')}, nothing to spend.")
        return "\n".join(out) + "\n"
    out += [
        "| | count |",
        "|---|--:|",
        f"| Tasks added | {len(d.added):,} |",
        f"| Tasks removed | {len(d.removed):,} |",
        f"| Prompts changed | {len(d.changed):,} |",
        f"| Tasks unchanged | {d.unchanged:,} |",
        f"| **A run would submit** | **{_plural(len(d.spend_tasks), 'task')}** |",
        f"| **Estimated credits** | **~{d.credits:,.0f}** |",
        f"| Pixels delivered | {d.pixels / 1e6:,.1f} Mpx |",
    ]
    if d.changed:
        out += ["", "#### Changed prompts"]
        for c in d.changed[:MAX_LISTED]:
            out += ["", f"**{c.manifest} / {c.prompt_id}**: {_what_changed(c)}", ""]
            if c.old_text != c.new_text:
                out += [*_diff_block(c.old_text, c.new_text), ""]
            out += ["| old size | new size | old id | new id |", "|---|---|---|---|"]
            out += [f"| {o.size} | {n.size} | `{o.out_task_id}` | `{n.out_task_id}` |" for o, n in c.pairs]
        out += _more(len(d.changed), "changed prompts")
    added, removed = _unpaired(d)
    for title, tasks in (("Added", added), ("Removed", removed)):
        if tasks:
            out += ["", f"#### {title}", "", "| prompt | size | id |", "|---|---|---|"]
            out += [
                f"| {t.manifest} / {t.prompt_id} | {t.size} | `{t.out_task_id}` |" for t in tasks[:MAX_LISTED]
            ]
            out += _more(len(tasks), "tasks")
    return "\n".join(out) + "\n"


def _diff_block(old: str, new: str) -> list[str]:
    # A fence longer than any backtick run in the prompts, so no prompt can end the block.
    longest = max((len(m) for m in re.findall(r"`+", old + "\n" + new)), default=0)
    fence = "`" * max(3, longest + 1)
    body = [f"- {line}" for line in old.splitlines() or [""]]
    body += [f"+ {line}" for line in new.splitlines() or [""]]
    return [f"{fence}diff", *body, fence]


def _more(total: int, what: str) -> list[str]:
    return (
        ["", f"… and {total - MAX_LISTED:,} more {what} (`imgbatch diff` lists them all)"]
        if total > MAX_LISTED
        else []
    )


def _task(t: Task) -> dict[str, Any]:
    return {
        "out_task_id": t.out_task_id,
        "manifest": t.manifest,
        "prompt_id": t.prompt_id,
        "size": t.size,
        "pixels": list(t.pixels),
        "repeat_index": t.repeat_index,
    }


def json_text(d: Diff) -> str:
    value = {
        "error": None,
        "old": d.old_label,
        "new": d.new_label,
        "added": [_task(t) for t in d.added],
        "removed": [_task(t) for t in d.removed],
        "changed": [c.as_json() for c in d.changed],
        "unchanged": d.unchanged,
        # An estimate: null when a price past a float makes it so (runner/jsonnum.py).
        "spend": {"tasks": len(d.spend_tasks), "credits": figure(d.credits), "pixels": d.pixels},
    }
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2, allow_nan=False)


def render(d: Diff, fmt: str) -> Sequence[str]:
    if fmt == "json":
        return [json_text(d)]
    if fmt == "markdown":
        return [markdown(d).rstrip("\n")]
    return text_lines(d)
