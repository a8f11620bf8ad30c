"""imgbatch status: what the ledger says about the manifests' tasks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner import report
from runner.commands._common import echo_lines, load_plan
from runner.errors import EXIT_FAILURE, EXIT_OK, EXIT_UNREACHABLE
from runner.ledger import Ledger
from runner.verify import file_verified, one_moment

if TYPE_CHECKING:
    import httpx

    from runner.commands.connection import Connection


def status(
    paths: Sequence[str],
    conn: Connection | None,
    ledger_path: Path,
    refresh: bool,
    out_dir: Path,
    fmt: str,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    max_image_mb: float | None = None,
    download_timeout: float | None = None,
) -> int:
    """conn: only needed with `refresh` (the table alone never loads the HTTP stack)."""
    checked, tasks = load_plan(paths)
    refreshed = None
    if refresh:
        # Only here: a status that reads the ledger need not load the HTTP stack (~0.1 s).
        from runner.commands.connection import make_client
        from runner.commands.run import drive
        from runner.download import DEFAULT_DOWNLOAD_TIMEOUT, DEFAULT_MAX_IMAGE_MB
        from runner.run import RunOptions

        assert conn is not None, "status --refresh needs a connection"
        options = RunOptions(
            out_dir=out_dir,
            submit=False,
            wait=False,
            poll_once=True,
            max_image_mb=DEFAULT_MAX_IMAGE_MB if max_image_mb is None else max_image_mb,
            download_timeout=DEFAULT_DOWNLOAD_TIMEOUT if download_timeout is None else download_timeout,
        )
        refreshed = drive(tasks, make_client(conn, transport), ledger_path, options, quiet=True)
    ledger = Ledger.open(ledger_path, write=False)
    base = ledger.path.parent
    with one_moment():
        rows = report.status_rows(tasks, checked, ledger.records, lambda o: file_verified(o, base))
    if fmt == "json":
        click.echo(report.dumps({"error": None, "ledger": str(ledger_path), "manifests": rows}))
    else:
        echo_lines(report.status_table(rows, ledger_path))
    if refreshed is not None and refreshed.unresolved:
        echo_lines([f"imgbatch: error: {e}" for e in refreshed.errors[:5]], err=True)
        click.echo(
            f"imgbatch: {refreshed.unresolved} tasks could not be refreshed; the table shows "
            "what the ledger held",
            err=True,
        )
        return EXIT_UNREACHABLE
    if refreshed is not None and refreshed.errors:
        # Why an image is still missing and what to do: the same lines as `run`.
        echo_lines([f"imgbatch: not done: {e}" for e in refreshed.errors], err=True)
        if refreshed.download_unreachable:
            return EXIT_UNREACHABLE
    # Done means every planned task completed with its images on disk as recorded.
    return EXIT_OK if all(r["done"] == r["tasks"] for r in rows) else EXIT_FAILURE
