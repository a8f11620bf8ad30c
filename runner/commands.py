"""One function per CLI command. Each returns the exit code; errors are raised as
ImgbatchError and turned into messages by the CLI's single handler."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from runner import report
from runner.errors import EXIT_FAILURE, EXIT_OK, InputError, ManifestInvalid
from runner.manifest import CheckedFile, check_files
from runner.plan import Task, expand
from runner.sandbox import Faults, Sandbox
from runner.schema import schema_text


def _echo_lines(lines: Sequence[str], *, err: bool = False) -> None:
    if lines:
        click.echo("\n".join(lines), err=err)


def validate(paths: Sequence[str], fmt: str, strict: bool) -> int:
    checked = check_files(paths)
    failed = any(not cf.ok for cf in checked) or (
        strict and any(d.severity == "warning" for cf in checked for d in cf.diagnostics)
    )
    if fmt == "json":
        click.echo(report.validation_json(checked, not failed))
    else:
        _echo_lines(report.diagnostics_lines(checked, fmt))
        click.echo(report.validation_summary(checked), err=fmt == "github")
    return EXIT_FAILURE if failed else EXIT_OK


def load_plan(paths: Sequence[str]) -> tuple[list[CheckedFile], list[Task]]:
    """Check every manifest and expand them; invalid input stops here with all its errors
    printed to stderr. Warnings are printed too: they concern what credits will buy."""
    checked = check_files(paths)
    _echo_lines(report.diagnostics_lines(checked, "text"), err=True)
    bad = [cf.file for cf in checked if not cf.ok]
    if bad:
        raise ManifestInvalid(
            f"{len(bad)} manifest{'s are' if len(bad) > 1 else ' is'} invalid: {', '.join(bad)}",
            hint="fix the errors above ('imgbatch validate' lists them)",
        )
    return checked, expand(cf.manifest for cf in checked if cf.manifest is not None)


def plan(paths: Sequence[str], fmt: str) -> int:
    checked, tasks = load_plan(paths)
    if fmt == "jsonl":
        _echo_lines(report.plan_jsonl(tasks))
    elif fmt == "json":
        click.echo(report.plan_json(tasks, checked))
    else:
        _echo_lines(report.plan_table(tasks, checked))
    return EXIT_OK


def schema() -> int:
    click.echo(schema_text(), nl=False)
    return EXIT_OK


def sandbox(
    host: str, port: int, token: str, task_seconds: float, faults: Faults, credits: int, seed: int
) -> int:
    """Serve the sandbox on loopback until stopped. The first stdout line is the base URL."""
    from runner.sandbox.server import bind, serve

    try:
        sock = bind(host, port)
    except OSError as e:
        raise InputError(
            f"cannot listen on {host}:{port}: {e.strerror}", hint="pick another --port, or 0 for a free one"
        ) from None
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"http://{shown}:{bound_port}")
    click.echo(f"imgbatch sandbox: token {token!r}, tasks take {task_seconds:g} s; Ctrl-C stops it", err=True)
    sys.stdout.flush()
    serve(
        Sandbox(token=token, task_seconds=task_seconds, faults=faults, credits_per_task=credits, seed=seed),
        sock,
    )
    return EXIT_OK
