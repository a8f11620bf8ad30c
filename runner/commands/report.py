"""imgbatch report: a static HTML contact sheet of the manifests' images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from runner import diffing, htmlreport
from runner.commands._common import load_plan
from runner.commands.diff import old_side
from runner.errors import EXIT_OK, InputError
from runner.ledger import Ledger


def report(paths: Sequence[str], ledger_path: Path, out_dir: Path, since: str | None) -> int:
    checked, tasks = load_plan(paths)
    ledger = Ledger.open(ledger_path, write=False)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        thumbs = htmlreport.Thumbnailer(out_dir, ledger.path.parent)
    except OSError as e:
        raise InputError(
            f"{out_dir}: cannot write the report there: {e.strerror}", hint="give another --out"
        ) from None
    base = ledger.path.parent
    names = ", ".join(cf.manifest.name for cf in checked if cf.manifest is not None)
    sheet = htmlreport.Sheet(f"imgbatch: {names}", htmlreport.cards_for(tasks, ledger.records, base, thumbs))
    if since is not None:
        new = diffing.side("working tree", (cf.manifest for cf in checked if cf.manifest is not None))
        d = diffing.diff(old_side(since, paths), new, ledger.records)
        sheet.since = since
        sheet.pairs = htmlreport.pairs_for(d, ledger.records, base, thumbs)
    index = htmlreport.write(sheet, out_dir)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(sheet.counts().items()))
    click.echo(f"imgbatch: {index}: {len(sheet.cards)} images ({counts})", err=True)
    return EXIT_OK
