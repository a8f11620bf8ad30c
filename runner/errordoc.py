"""The JSON document a command with `--format json` prints when it stops with an error.

CI parses stdout: an empty one is not JSON, so every command that takes `--format json` prints
exactly one document there, errors included, of one shape: `{"error": {"message", "hint",
"exit_code"}, ...}` (`run` adds what it knows: requests made, ledger, images). The line on
stderr and the exit code stay as they are. Only click is imported: `validate` stays light.
"""

from __future__ import annotations

from typing import Any

import click

from runner import interrupt
from runner.errors import EXIT_INTERNAL, ImgbatchError
from runner.redact import scrub

# In click's ctx.meta, which nested contexts share: the --format the command was given (its
# option's callback sets it), and whether the command printed its error document itself.
FORMAT_KEY = "imgbatch.format"
_PRINTED_KEY = "imgbatch.error-document-printed"


def remember_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """The --format options' callback: the top-level handler reads it when an error arrives."""
    ctx.meta[FORMAT_KEY] = value
    return value


def error_object(e: BaseException) -> dict[str, Any]:
    """The `error` member: what the stderr line says, split as the error holds it."""
    if isinstance(e, ImgbatchError):
        return {"message": scrub(e.message), "hint": scrub(e.hint), "exit_code": e.exit_code}
    if isinstance(e, KeyboardInterrupt):
        return {
            "message": interrupt.message(),
            "hint": "rerun the same command to resume",
            "exit_code": interrupt.exit_code(),
        }
    return {
        "message": f"internal error: {type(e).__name__}: {scrub(str(e))}",
        "hint": "please report it; IMGBATCH_DEBUG=1 shows the traceback",
        "exit_code": EXIT_INTERNAL,
    }


def print_error_document(e: BaseException, **extra: Any) -> None:
    """Print the document now (a command that knows more than the handler does), and mark it
    printed so the top-level handler does not print a second one."""
    from runner.report import dumps  # not at import: `--help` needs none of it

    click.echo(dumps({"error": error_object(e), **extra}))
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_PRINTED_KEY] = True


def handle(ctx: click.Context, e: BaseException) -> None:
    """The top-level handler's part: the document, if the command takes --format json, was
    given it, and has not printed one yet."""
    if ctx.meta.get(FORMAT_KEY) == "json" and not ctx.meta.get(_PRINTED_KEY):
        print_error_document(e)
