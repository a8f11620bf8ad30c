"""The click layer: parses options and calls one function in runner.commands per command."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from runner import __version__, commands
from runner.errors import ImgbatchError

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
            click.echo(f"imgbatch: error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("imgbatch: interrupted; rerun the same command to resume", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as e:  # a bug: still one line, traceback only on request
            if os.environ.get("IMGBATCH_DEBUG"):
                traceback.print_exc()
            click.echo(
                f"imgbatch: internal error: {type(e).__name__}: {e} "
                "(please report it; IMGBATCH_DEBUG=1 shows the traceback)",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=ImgbatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imgbatch")
def cli() -> None:
    """Declarative, reproducible batches for the aireiter gpt_image_2 image API.

    Exit codes: 0 ok; 1 a failure was found (invalid manifest, failed tasks); 2 usage or
    invalid input; 3 authentication or configuration; 4 refused by a guard (spending limit,
    ledger in use); 5 the service could not be reached; 70 internal error.
    """


PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path())


@cli.command()
@PATHS
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
    ctx.exit(commands.validate(paths, fmt, strict))


@cli.command()
@PATHS
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "jsonl"]), default="table", show_default=True
)
@click.pass_context
def plan(ctx: click.Context, paths: tuple[str, ...], fmt: str) -> None:
    """List every task the manifests expand to, sorted by out_task_id."""
    ctx.exit(commands.plan(paths, fmt))


@cli.command()
@click.pass_context
def schema(ctx: click.Context) -> None:
    """Print the manifest JSON Schema (for editors and other tools)."""
    ctx.exit(commands.schema())


def main() -> None:
    cli.main(prog_name="imgbatch")
    sys.exit(0)  # pragma: no cover - click exits itself
