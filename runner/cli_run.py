"""The click layer of the commands that talk to the service: run and status. Like
runner/cli.py it only parses options and calls one runner.commands function, imported lazily."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.cliconn import (
    DOWNLOAD_TIMEOUT,
    MAX_IMAGE_MB,
    RUN_LEDGER_OPTION,
    RUN_OUT_OPTION,
    connection_from,
    connection_options,
    ledger_and_out,
)
from runner.cliopts import MAX_PLAN_TASKS, PATHS, SHARD_OPTION, format_option

if TYPE_CHECKING:
    from runner.shard import Shard


def register(group: click.Group) -> None:
    for command in (run, status):
        group.add_command(command)


@click.command()
@PATHS
@MAX_PLAN_TASKS
@connection_options
@RUN_LEDGER_OPTION
@RUN_OUT_OPTION
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.01),
    default=None,
    help="At most this many requests per second (default: no client-side limit).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.0),
    default=2.0,
    show_default=True,
    help="Shortest wait before asking about a task, growing 1.5x per query up to 30. A task this "
    "run submits is first asked once most of its size class were done at its age (learnt in the run).",
)
@click.option(
    "--max-tasks",
    type=click.IntRange(0),
    default=None,
    help="Refuse, sending nothing, if more than this many tasks would be submitted.",
)
@click.option(
    "--max-credits",
    type=click.FloatRange(0.0),
    default=None,
    help="Refuse, sending nothing, if the estimate exceeds this; stop submitting if the "
    "service's own estimates reach it.",
)
@click.option(
    "--task-timeout",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1800.0,
    show_default=True,
    help="Seconds from submission a task may take; then it is recorded timed_out (still paid; "
    "a later run asks the service again).",
)
@MAX_IMAGE_MB
@DOWNLOAD_TIMEOUT
@click.option(
    "--lost-after",
    type=click.FloatRange(0.0),
    default=60.0,
    hidden=True,  # for tests: shorter spans only make paying twice after replication lag likelier
    help="Seconds over which 3 denials (404) of a task must spread before it is sent again or lost.",
)
@click.option("--retry-failed", is_flag=True, help="Resubmit failed tasks (as <out_task_id>-r<attempt>).")
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask before spending (without a terminal it never asks)."
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Submit and return; a later run or 'imgbatch status --refresh' picks the tasks up.",
)
@format_option("text", "json", help="json prints a machine-readable summary on stdout.")
@SHARD_OPTION
@click.pass_context
def run(
    ctx: click.Context,
    /,
    paths: tuple[str, ...],
    ledger_path: Path | None,
    out_dir: Path | None,
    poll_interval: float,
    max_tasks: int | None,
    max_credits: float | None,
    retry_failed: bool,
    yes: bool,
    no_wait: bool,
    fmt: str,
    shard: Shard | None,
    task_timeout: float,
    max_image_mb: float,
    download_timeout: float,
    lost_after: float,
    **opts: Any,
) -> None:
    """Submit what is new, wait, download the images, record everything in the ledger.

    Exit 0 only when every planned task is completed with its images on disk and verified;
    1 tasks failed or images refused, 2 invalid input or --out not writable, 3 key or
    configuration, 4 refused by --max-tasks/--max-credits or a ledger in use, 5 service or
    image host unreachable, or --task-timeout/--download-timeout passed (rerun to resume).
    """
    if no_wait and opts["sandbox"]:
        raise click.UsageError(
            "--no-wait needs a sandbox that outlives this run: start "
            "'imgbatch sandbox' and pass its URL as --base-url"
        )
    from runner.commands.run import run as command
    from runner.run import RunOptions

    ledger_path, out_dir = ledger_and_out(ledger_path, out_dir, opts["sandbox"])
    options = RunOptions(
        out_dir=out_dir,
        concurrency=opts["concurrency"],
        poll_interval=poll_interval,
        max_tasks=max_tasks,
        max_credits=max_credits,
        retry_failed=retry_failed,
        wait=not no_wait,
        task_timeout=task_timeout,
        max_image_mb=max_image_mb,
        download_timeout=download_timeout,
        lost_after=lost_after,
    )
    ctx.exit(command(paths, connection_from(opts), ledger_path, options, fmt, shard=shard, yes=yes))


@click.command()
@PATHS
@MAX_PLAN_TASKS
@RUN_LEDGER_OPTION
@RUN_OUT_OPTION
@click.option(
    "--refresh", is_flag=True, help="Ask the service about unfinished tasks once and download finished ones."
)
@MAX_IMAGE_MB
@DOWNLOAD_TIMEOUT
@connection_options
@format_option("text", "json")
@click.pass_context
def status(
    ctx: click.Context,
    /,
    paths: tuple[str, ...],
    ledger_path: Path | None,
    out_dir: Path | None,
    refresh: bool,
    fmt: str,
    max_image_mb: float,
    download_timeout: float,
    **opts: Any,
) -> None:
    """What the ledger says about the manifests' tasks, per manifest.

    Exit 0 when every planned task is completed with its images on disk; 1 otherwise; with
    --refresh, 5 when the service or an image host could not be reached or was too slow.
    """
    if refresh and opts["sandbox"]:
        raise click.UsageError(
            "--refresh needs a sandbox that outlives a run: start "
            "'imgbatch sandbox' and pass its URL as --base-url"
        )
    from runner.commands.status import status as command

    ledger_path, out_dir = ledger_and_out(ledger_path, out_dir, opts["sandbox"])
    # Without --refresh nothing is sent: the HTTP stack is not even loaded.
    conn = connection_from(opts) if refresh else None
    ctx.exit(
        command(
            paths,
            conn,
            ledger_path,
            refresh,
            out_dir,
            fmt,
            max_image_mb=max_image_mb,
            download_timeout=download_timeout,
        )
    )
