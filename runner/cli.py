"""The click layer's root: the `imgbatch` group and the one top-level error handler. The
commands are declared in their own modules, one group of commands each, and each only parses
options and calls one function of a runner.commands module, imported inside the command, so
`--help`, `validate`, `plan` and `schema` never load httpx, Pillow, rich or uvicorn:

- runner/cli_manifest.py: validate, plan, schema, init (manifests only, no service);
- runner/cli_run.py: run, status (the service; their options in runner/cliconn.py);
- runner/cli_review.py: prune, diff, report, merge-ledgers;
- runner/cli_sandbox.py: sandbox and its fault knobs.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from runner import __version__, bulk, cli_manifest, cli_review, cli_run, errordoc, interrupt
from runner.cli_sandbox import sandbox
from runner.errors import EXIT_INTERNAL, ImgbatchError
from runner.redact import scrub


class ImgbatchGroup(click.Group):
    """The one top-level handler: every ImgbatchError becomes one line and its exit code (and,
    under --format json, one JSON document on stdout: runner/errordoc.py)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except ImgbatchError as e:
            errordoc.handle(ctx, e)
            click.echo(f"imgbatch: error: {scrub(str(e))}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt as e:
            errordoc.handle(ctx, e)
            click.echo(f"imgbatch: {interrupt.message()}; rerun the same command to resume", err=True)
            ctx.exit(interrupt.exit_code())
        except Exception as e:  # a bug: still one line, traceback only on request
            if os.environ.get("IMGBATCH_DEBUG"):
                import traceback  # not at start-up: only a bug report needs it

                traceback.print_exc()
            errordoc.handle(ctx, e)
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
            bulk.thaw()


@click.group(cls=ImgbatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imgbatch")
def cli() -> None:
    """Declarative, reproducible batches for the aireiter gpt_image_2 image API.

    Exit codes: 0 ok; 1 a failure was found (invalid manifest, failed tasks, images refused);
    2 usage or invalid input, or a file that cannot be written; 3 authentication or
    configuration; 4 refused by a guard (spending limit, ledger in use); 5 the service or
    image host could not be reached, or a task/download timed out; 70 internal error;
    130 interrupted (Ctrl-C); 143 terminated (SIGTERM). Rerun to resume after 5, 130, 143.
    """


cli_manifest.register(cli)
cli_run.register(cli)
cli_review.register(cli)
cli.add_command(sandbox)


def main() -> None:
    interrupt.install()
    cli.main(prog_name="imgbatch")
    sys.exit(0)  # pragma: no cover - click exits itself
