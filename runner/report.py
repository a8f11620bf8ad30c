"""Output of validate and plan: text, JSON, JSON Lines, tables and GitHub annotations."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from runner.diagnostics import Diagnostic, count
from runner.manifest import CheckedFile
from runner.plan import Task


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


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


def validation_json(checked: Sequence[CheckedFile], valid: bool) -> str:
    return dumps(
        {
            "valid": valid,
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


def plan_jsonl(tasks: Sequence[Task]) -> list[str]:
    return [dumps(t.as_json()) for t in tasks]


def plan_json(tasks: Sequence[Task], checked: Sequence[CheckedFile]) -> str:
    return json.dumps(
        {"tasks": [t.as_json() for t in tasks], "manifests": manifest_summaries(tasks, checked)},
        ensure_ascii=False,
        sort_keys=True,
        indent=2,
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


def warning_lines(diags: Sequence[Diagnostic]) -> list[str]:
    return [d.text() for d in diags if d.severity == "warning"]
