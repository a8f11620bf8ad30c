"""imgbatch run: submit what is new, wait, download, record."""

from __future__ import annotations

import asyncio
import functools
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import httpx

from runner import report
from runner.client import ApiClient
from runner.commands._common import echo_lines, load_plan
from runner.commands.connection import Connection, make_client
from runner.download import Downloader
from runner.errordoc import print_error_document
from runner.errors import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
)
from runner.estimate import Estimate
from runner.ledger import Ledger
from runner.ledgerguard import endpoint_of
from runner.plan import Task
from runner.progress import Progress, make_progress
from runner.run import Runner, RunOptions, Summary
from runner.shard import Shard
from runner.slots import prepare_tls


def run(
    paths: Sequence[str],
    conn: Connection,
    ledger_path: Path,
    options: RunOptions,
    fmt: str,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    shard: Shard | None = None,
    yes: bool = False,
    interactive: bool | None = None,
) -> int:
    client: ApiClient | None = None
    prepare_tls()  # on a thread, while the manifests are read
    try:
        _, tasks = load_plan(paths)
        if shard is not None:
            tasks = [t for t in tasks if shard.contains(t.out_task_id)]
        if interactive is None:
            interactive = sys.stdin.isatty() and sys.stderr.isatty()
        # The embedded sandbox spends nothing: it states what it will send but does not ask.
        ask = interactive and not yes and not conn.sandbox
        options.confirm = functools.partial(state_and_confirm, options=options, ask=ask)
        client = make_client(conn, transport)
        summary = drive(tasks, client, ledger_path, options)
    except (Exception, KeyboardInterrupt) as e:  # a bug too: the document is still due
        if fmt == "json":
            # CI reads stdout: a document saying why, never an empty one, with what only the
            # run knows. The top-level handler still prints the line on stderr and sets the
            # exit code (and prints no second document).
            print_error_document(
                e,
                requests=client.requests if client is not None else 0,
                ledger=str(ledger_path),
                images=str(options.out_dir),
            )
        raise
    _report_run(summary, ledger_path, options, fmt)
    return _run_exit_code(summary, options)


def drive(
    tasks: list[Task], client: ApiClient, ledger_path: Path, options: RunOptions, *, quiet: bool = False
) -> Summary:
    """Run the tasks against the client with the ledger open for writing."""
    ledger = Ledger.open(ledger_path, write=True, endpoint=endpoint_of(client.base_url))
    if ledger.claimed:
        click.echo(
            f"imgbatch: {ledger_path}: {ledger.claimed} records written before imgbatch recorded "
            f"endpoints now belong to {ledger.endpoint}",
            err=True,
        )
    # Quiet (status --refresh): its table is the report; count lines meant for a run would mislead.
    progress = Progress(every=math.inf) if quiet else make_progress()

    async def go() -> Summary:
        download_options = options.download_options()
        download_options.backoff = client.retry.base  # the same patience as with the API
        downloader = Downloader(
            options.out_dir,
            ledger.path.parent,
            download_options,
            transport=client.transport,
            concurrency=options.concurrency,
        )
        try:
            return await Runner(tasks, ledger, client, options, progress, downloader).run()
        finally:
            await downloader.aclose()
            await client.aclose()

    try:
        return asyncio.run(go())
    finally:
        ledger.close()


def state_and_confirm(est: Estimate, *, options: RunOptions, ask: bool) -> bool:
    """Say what the run will send before it sends anything; on a terminal, ask first."""
    limits = [
        f"--max-tasks {options.max_tasks}" if options.max_tasks is not None else "",
        f"--max-credits {options.max_credits:g}" if options.max_credits is not None else "",
    ]
    within = f" (within {' and '.join(x for x in limits if x)})" if any(limits) else ""
    tasks = f"{est.total_tasks} task{'s' if est.total_tasks != 1 else ''}"
    total = f"{tasks}, about {est.total_credits:,.0f} credits"
    lines = [f"imgbatch: this run will submit {total}{within}:"]
    lines += [f"imgbatch:   {line}" for line in est.lines()]
    echo_lines(lines, err=True)
    if not ask:
        return True
    return _answered_yes("imgbatch: go ahead? [y/N]: ")


def _answered_yes(question: str) -> bool:
    """Ask on the terminal. End of input (Ctrl-D) is a no; Ctrl-C stays an interruption, which
    the top-level handler reports as such (click.confirm turns both into a bare 'Aborted!')."""
    while True:
        click.echo(question, nl=False, err=True)
        try:
            answer = input().strip().lower()
        except EOFError:
            click.echo(err=True)
            return False
        if answer in ("y", "yes"):
            return True
        if answer in ("", "n", "no"):
            return False


def _report_run(summary: Summary, ledger_path: Path, options: RunOptions, fmt: str) -> None:
    if fmt == "json":
        document = {
            **summary.as_json(),
            "error": None,
            "ledger": str(ledger_path),
            "images": str(options.out_dir),
        }
        click.echo(report.dumps(document))
        return
    echo_lines(report.run_summary_lines(summary, ledger_path, options.out_dir), err=True)


def _run_exit_code(summary: Summary, options: RunOptions) -> int:
    """0 only when every planned task is completed with its files on disk (or, with --no-wait,
    submitted)."""
    if summary.unresolved or summary.download_unreachable or summary.timed_out:
        return EXIT_UNREACHABLE
    if summary.held_back or summary.refusal:
        return EXIT_REFUSED
    if summary.failed or summary.download_refused:
        return EXIT_FAILURE
    if options.wait and summary.completed < summary.planned:
        return EXIT_FAILURE
    if not options.wait and summary.not_submitted + summary.unconfirmed:
        return EXIT_FAILURE
    return EXIT_OK
