"""What several commands share: printing lines, and loading manifests into a plan."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice

import click

from runner import report
from runner.bulk import bulk_build
from runner.errors import ManifestInvalid
from runner.limits import DEFAULT_MAX_PLAN_TASKS, PLAN_LIMIT_KEY
from runner.manifest import CheckedFile, Manifest, check_files
from runner.plan import Task, expand


def echo_lines(lines: Iterable[str], *, err: bool = False) -> None:
    """Print lines in batches: a plan of 100,000 tasks is never one string in memory."""
    it = iter(lines)
    while batch := list(islice(it, 4096)):
        click.echo("\n".join(batch), err=err)


def max_plan_tasks() -> int:
    """The --max-plan-tasks of the running command, or the default outside the CLI."""
    ctx = click.get_current_context(silent=True)
    limit = ctx.meta.get(PLAN_LIMIT_KEY) if ctx is not None else None
    return limit if isinstance(limit, int) else DEFAULT_MAX_PLAN_TASKS


def skipped_note(skipped: Sequence[str]) -> list[str]:
    """One line naming the YAML files a folder search did not take for manifests."""
    if not skipped:
        return []
    shown = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
    return [f"imgbatch: skipped {len(skipped)} YAML file(s) that are not manifests: {shown}"]


def load_plan(paths: Sequence[str]) -> tuple[list[CheckedFile], list[Task]]:
    """Check every manifest (check_plan) and expand them into tasks."""
    checked = check_plan(paths)
    with bulk_build():
        return checked, expand(valid_manifests(checked))


def check_plan(paths: Sequence[str]) -> list[CheckedFile]:
    """Check every manifest; invalid input stops here with all its errors printed to stderr.
    Warnings are printed too: they concern what credits will buy. More tasks than
    --max-plan-tasks is an error found before any task is built."""
    with bulk_build():
        checked = check_files(paths, max_plan_tasks())
    echo_lines(skipped_note(checked.skipped), err=True)
    echo_lines(report.diagnostics_lines(checked, "text"), err=True)
    bad = [cf.file for cf in checked if not cf.ok]
    if bad:
        raise ManifestInvalid(
            f"{len(bad)} manifest{'s are' if len(bad) > 1 else ' is'} invalid: {', '.join(bad)}",
            hint="fix the errors above ('imgbatch validate' lists them)",
        )
    return checked


def valid_manifests(checked: Iterable[CheckedFile]) -> list[Manifest]:
    return [cf.manifest for cf in checked if cf.manifest is not None]
