"""imgbatch validate: check manifests against the schema."""

from __future__ import annotations

from collections.abc import Sequence

import click

from runner import report
from runner.commands._common import echo_lines, max_plan_tasks, skipped_note
from runner.errors import EXIT_FAILURE, EXIT_OK
from runner.manifest import check_files


def validate(paths: Sequence[str], fmt: str, strict: bool) -> int:
    checked = check_files(paths, max_plan_tasks())
    if fmt != "json":
        echo_lines(skipped_note(checked.skipped), err=True)
    failed = any(not cf.ok for cf in checked) or (
        strict and any(d.severity == "warning" for cf in checked for d in cf.diagnostics)
    )
    if fmt == "json":
        click.echo(report.validation_json(checked, not failed, checked.skipped))
    else:
        echo_lines(report.diagnostics_lines(checked, fmt))
        click.echo(report.validation_summary(checked), err=fmt == "github")
    return EXIT_FAILURE if failed else EXIT_OK
