"""imgbatch plan: every task the manifests expand to."""

from __future__ import annotations

from collections.abc import Sequence

import click

from runner import report
from runner.commands._common import echo_lines, load_plan
from runner.errors import EXIT_OK


def plan(paths: Sequence[str], fmt: str) -> int:
    checked, tasks = load_plan(paths)
    if fmt == "jsonl":
        echo_lines(report.plan_jsonl(tasks))
    elif fmt == "json":
        click.echo(report.plan_json(tasks, checked))
    else:
        echo_lines(report.plan_table(tasks, checked))
    return EXIT_OK
