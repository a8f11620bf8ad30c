"""The click layer: parses options and calls one function of a runner.commands module per
command. Command modules are imported inside the command, so `--help` and `validate` never
load httpx, Pillow, rich or uvicorn."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner import __version__
from runner.cliopts import MAX_PLAN_TASKS, PATHS, SHARD_OPTION, SHARE
from runner.errors import ImgbatchError
from runner.ledger import DEFAULT_LEDGER, DEFAULT_OUT, SANDBOX_LEDGER, SANDBOX_OUT
from runner.redact import scrub

if TYPE_CHECKING:
    from runner.commands.connection import Connection
    from runner.shard import Shard


EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class ImgbatchGroup(click.Group):
    """The one top-level handler: every ImgbatchError becomes one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except ImgbatchError as e:
            click.echo(f"imgbatch: error: {scrub(str(e))}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("imgbatch: interrupted; rerun the same command to resume", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as e:  # a bug: still one line, traceback only on request
            if os.environ.get("IMGBATCH_DEBUG"):
                traceback.print_exc()
            click.echo(
                f"imgbatch: internal error: {type(e).__name__}: {scrub(str(e))} "
                "(please report it; IMGBATCH_DEBUG=1 shows the traceback)",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL)
        finally:
            # Digests of image files, kept for the next command; a command that checked no
            # file never imported the module (so --help and validate stay light).
            verify = sys.modules.get("runner.verify")
            if verify is not None:
                verify.save_caches()


@click.group(cls=ImgbatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imgbatch")
def cli() -> None:
    """Declarative, reproducible batches for the aireiter gpt_image_2 image API.

    Exit codes: 0 ok; 1 a failure was found (invalid manifest, failed tasks, images refused);
    2 usage or invalid input, or a file that cannot be written; 3 authentication or
    configuration; 4 refused by a guard (spending limit, ledger in use); 5 the service or
    image host could not be reached, or a task/download timed out; 70 internal error.
    """


@cli.command()
@PATHS
@MAX_PLAN_TASKS
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="github prints workflow annotation lines.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as failures.")
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Check manifests (files or folders) against the schema.

    Exit 0 valid (warnings allowed), 1 invalid, 2 usage.
    """
    from runner.commands.validate import validate as command

    ctx.exit(command(paths, fmt, strict))


@cli.command()
@PATHS
@MAX_PLAN_TASKS
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "jsonl"]), default="table", show_default=True
)
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Plan against this ledger: create, download, running, failed, done, orphaned.",
)
@click.option("--retry-failed", is_flag=True, help="With --ledger: plan failed tasks as create.")
@click.option(
    "--exit-code",
    is_flag=True,
    help="With --ledger: exit 1 when a run would submit or download anything, 0 when up to date.",
)
@SHARD_OPTION
@click.pass_context
def plan(
    ctx: click.Context,
    paths: tuple[str, ...],
    fmt: str,
    ledger_path: Path | None,
    retry_failed: bool,
    exit_code: bool,
    shard: Shard | None,
) -> None:
    """List every task the manifests expand to, sorted by out_task_id; with --ledger, what a
    run would do with each (Terraform-style) and which ledger records are orphaned.

    Exit 0; with --exit-code, 1 when a run has work to do.
    """
    if (retry_failed or exit_code) and ledger_path is None:
        raise click.UsageError("--retry-failed and --exit-code need --ledger FILE")
    from runner.commands.plan import plan as command

    ctx.exit(command(paths, fmt, ledger_path, retry_failed=retry_failed, exit_code=exit_code, shard=shard))


@cli.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Write it to this file (replaced atomically) instead of printing it.",
)
@click.pass_context
def schema(ctx: click.Context, output: Path | None) -> None:
    """Print the manifest JSON Schema (for editors and other tools)."""
    from runner.commands.schema import schema as command

    ctx.exit(command(output))


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", default=None, help="The starter manifest's name (default: from the folder's name).")
@click.pass_context
def init(ctx: click.Context, folder: Path, name: str | None) -> None:
    """Set up FOLDER (default: here) for imgbatch: a starter manifest, a local copy of the
    schema for editors, and .gitignore/.gitattributes lines. Never overwrites a file."""
    from runner.commands.init import init as command

    ctx.exit(command(folder, name))


def connection_options(f: Any) -> Any:
    for decorator in reversed(
        [
            click.option(
                "--base-url",
                envvar="AIREITER_BASE_URL",
                default=None,
                help="API base URL [env AIREITER_BASE_URL; default https://aireiter.com]. "
                "The key comes from AIREITER_API_KEY.",
            ),
            click.option(
                "--sandbox",
                is_flag=True,
                help="Use the embedded sandbox instead of the service: no key, no network.",
            ),
            click.option(
                "--sandbox-task-seconds",
                type=click.FloatRange(0.0),
                default=1.0,
                show_default=True,
                help="With --sandbox: how long each task takes.",
            ),
            click.option(
                "--sandbox-fail-share",
                type=SHARE,
                default=0.0,
                help="With --sandbox: share of tasks that fail.",
            ),
            click.option(
                "--retries",
                type=click.IntRange(1, 20),
                default=6,
                show_default=True,
                help="Attempts per request on 5xx, timeouts and connection errors (429s "
                "slow the run down instead of using attempts).",
            ),
        ]
    ):
        f = decorator(f)
    return f


def connection_from(opts: dict[str, Any]) -> Connection:
    from runner.client import RetryPolicy
    from runner.commands.connection import Connection

    return Connection(
        base_url=opts["base_url"],
        sandbox=opts["sandbox"],
        sandbox_task_seconds=opts["sandbox_task_seconds"],
        sandbox_fail_share=opts["sandbox_fail_share"],
        concurrency=opts.get("concurrency", 8),
        rate=opts.get("rate"),
        retry=RetryPolicy(attempts=opts["retries"]),
    )


# run and status: defaults depend on --sandbox, which keeps its own ledger and images.
RUN_LEDGER_OPTION = click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The results ledger (JSON Lines; keep it in git) [default: {DEFAULT_LEDGER}; "
    f"with --sandbox {SANDBOX_LEDGER}].",
)
RUN_OUT_OPTION = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder for the downloaded images [default: {DEFAULT_OUT}; with --sandbox {SANDBOX_OUT}].",
)


def ledger_and_out(ledger_path: Path | None, out_dir: Path | None, sandbox: bool) -> tuple[Path, Path]:
    if sandbox:
        return ledger_path or Path(SANDBOX_LEDGER), out_dir or Path(SANDBOX_OUT)
    return ledger_path or Path(DEFAULT_LEDGER), out_dir or Path(DEFAULT_OUT)


# The download bounds, for run and for status --refresh (which downloads finished tasks too).
MAX_IMAGE_MB = click.option(
    "--max-image-mb",
    type=click.FloatRange(min=0.0, min_open=True),
    default=64.0,
    show_default=True,
    help="Largest image download accepted, in MB; larger bodies are cut off while streaming.",
)
DOWNLOAD_TIMEOUT = click.option(
    "--download-timeout",
    type=click.FloatRange(min=0.0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds one image download may take in all, retries included.",
)


@cli.command()
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
    help="Seconds before the first status query; grows 1.5x per query up to 30.",
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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json prints a machine-readable summary on stdout.",
)
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


@cli.command()
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
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
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
    conn = connection_from(opts)
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


# The review and CI commands (prune, diff, report, merge-ledgers) and the sandbox with its
# fault knobs live in their own modules.
from runner.cli_review import register  # noqa: E402 - needs `cli` defined above
from runner.cli_sandbox import sandbox  # noqa: E402

register(cli)
cli.add_command(sandbox)


def main() -> None:
    cli.main(prog_name="imgbatch")
    sys.exit(0)  # pragma: no cover - click exits itself
