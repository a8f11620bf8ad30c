"""What several commands share: printing lines, and loading manifests into a plan."""

from __future__ import annotations

from collections.abc import Sequence

import click

from runner import report
from runner.errors import ManifestInvalid
from runner.manifest import CheckedFile, check_files
from runner.plan import Task, expand


def echo_lines(lines: Sequence[str], *, err: bool = False) -> None:
    if lines:
        click.echo("\n".join(lines), err=err)


def load_plan(paths: Sequence[str]) -> tuple[list[CheckedFile], list[Task]]:
    """Check every manifest and expand them; invalid input stops here with all its errors
    printed to stderr. Warnings are printed too: they concern what credits will buy."""
    checked = check_files(paths)
    echo_lines(report.diagnostics_lines(checked, "text"), err=True)
    bad = [cf.file for cf in checked if not cf.ok]
    if bad:
        raise ManifestInvalid(
            f"{len(bad)} manifest{'s are' if len(bad) > 1 else ' is'} invalid: {', '.join(bad)}",
            hint="fix the errors above ('imgbatch validate' lists them)",
        )
    return checked, expand(cf.manifest for cf in checked if cf.manifest is not None)
