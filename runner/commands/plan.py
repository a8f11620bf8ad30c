"""imgbatch plan: every task the manifests expand to; with --ledger, what a run would do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from runner import report
from runner.bulk import bulk_build
from runner.commands._common import check_plan, echo_lines, load_plan, valid_manifests
from runner.errors import EXIT_FAILURE, EXIT_OK
from runner.ledger import Ledger
from runner.plan import jsonl_lines
from runner.shard import Shard


def plan(
    paths: Sequence[str],
    fmt: str,
    ledger_path: Path | None = None,
    *,
    retry_failed: bool = False,
    exit_code: bool = False,
    shard: Shard | None = None,
) -> int:
    if ledger_path is None and fmt == "jsonl":
        # The one output that needs no task objects: lines straight from the manifests.
        checked_only = check_plan(paths)
        with bulk_build():
            echo_lines(jsonl_lines(valid_manifests(checked_only), shard.contains if shard else None))
        return EXIT_OK
    checked, tasks = load_plan(paths)
    if shard is not None:
        tasks = [t for t in tasks if shard.contains(t.out_task_id)]
    if ledger_path is None:
        if fmt == "json":
            click.echo(report.plan_json(tasks, checked))
        else:
            echo_lines(report.plan_table(tasks, checked))
        return EXIT_OK
    # Checking images by sha256 needs the download module (httpx, Pillow): only with --ledger,
    # so a plain plan starts as light as validate.
    from runner import ledgerplan

    ledger = Ledger.open(ledger_path, write=False)
    lp = ledgerplan.plan_against(
        tasks, ledger.records, ledger_path, ledger.path.parent, retry_failed=retry_failed, shard=shard
    )
    if fmt == "jsonl":
        echo_lines(ledgerplan.jsonl_lines(lp))
    elif fmt == "json":
        click.echo(ledgerplan.json_text(lp, report.manifest_summaries(tasks, checked)))
    else:
        echo_lines(ledgerplan.text_lines(lp))
    return EXIT_FAILURE if exit_code and lp.has_work else EXIT_OK
