"""The click layer of the commands that read manifests without talking to the service:
validate, plan, schema, init. Like runner/cli.py it only parses options and calls one
runner.commands function, imported lazily (these commands must not load httpx, Pillow, rich
or uvicorn; tests/test_startup.py checks)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner.cliopts import MAX_PLAN_TASKS, PATHS, SHARD_OPTION, format_option

if TYPE_CHECKING:
    from runner.shard import Shard


def register(group: click.Group) -> None:
    for command in (validate, plan, schema, init):
        group.add_command(command)


@click.command()
@PATHS
@MAX_PLAN_TASKS
@format_option("text", "json", "github", help="github prints workflow annotation lines.")
@click.option("--strict", is_flag=True, help="Treat warnings as failures.")
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Check manifests (files or folders) against the schema.

    Exit 0 valid (warnings allowed), 1 invalid, 2 usage.
    """
    from runner.commands.validate import validate as command

    ctx.exit(command(paths, fmt, strict))


@click.command()
@PATHS
@MAX_PLAN_TASKS
@format_option("table", "json", "jsonl")
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


@click.command()
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


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", default=None, help="The starter manifest's name (default: from the folder's name).")
@click.pass_context
def init(ctx: click.Context, folder: Path, name: str | None) -> None:
    """Set up FOLDER (default: here) for imgbatch: a starter manifest, a local copy of the
    schema for editors, and .gitignore/.gitattributes lines. Never overwrites a file."""
    from runner.commands.init import init as command

    ctx.exit(command(folder, name))
