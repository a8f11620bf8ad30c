"""imgbatch merge-ledgers: one sorted ledger from several (CI shards, or git's merge driver)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from runner import merge as merging
from runner.commands._common import echo_lines
from runner.errors import EXIT_FAILURE, EXIT_OK


def merge_ledgers(out: Path, ledgers: Sequence[Path], base: Path | None) -> int:
    merged = merging.merge_files(out, ledgers, base)
    echo_lines([f"imgbatch: note: {k}" for k in merged.kept], err=True)
    echo_lines([f"imgbatch: conflict: {c}" for c in merged.conflicts], err=True)
    click.echo(
        f"imgbatch: merged {len(ledgers)} ledgers into {out}: {len(merged.records)} records"
        + (f", {merged.deleted} deleted as in the base" if base is not None else "")
        + (f", {len(merged.conflicts)} conflicts" if merged.conflicts else ""),
        err=True,
    )
    if merged.conflicts:
        advice = []
        if merged.services:
            advice.append(
                "keep each service's records in a ledger of its own (run --ledger) and merge only "
                "ledgers of one service"
            )
        if len(merged.conflicts) > merged.services:
            advice.append("check which image is right, fix that record, then commit")
        click.echo(f"imgbatch: each conflicting id kept one side's record; {'; '.join(advice)}", err=True)
        return EXIT_FAILURE
    return EXIT_OK
