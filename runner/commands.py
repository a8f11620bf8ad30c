"""One function per CLI command. Each returns the exit code; errors are raised as
ImgbatchError and turned into messages by the CLI's single handler."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import httpx

from runner import report
from runner.client import ApiClient, RetryPolicy
from runner.errors import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    ConfigError,
    InputError,
    ManifestInvalid,
)
from runner.ledger import Ledger
from runner.manifest import CheckedFile, check_files
from runner.plan import Task, expand
from runner.progress import make_progress
from runner.run import Runner, RunOptions, Summary
from runner.sandbox import Faults, Sandbox
from runner.sandbox.transport import IN_PROCESS_URL, SandboxTransport
from runner.schema import schema_text

API_KEY_ENV = "AIREITER_API_KEY"
BASE_URL_ENV = "AIREITER_BASE_URL"
DEFAULT_BASE_URL = "https://aireiter.com"


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


@dataclass
class Connection:
    base_url: str | None
    sandbox: bool
    sandbox_task_seconds: float = 1.0
    sandbox_fail_share: float = 0.0
    concurrency: int = 8
    rate: float | None = None
    retry: RetryPolicy | None = None


def make_client(conn: Connection, transport: httpx.AsyncBaseTransport | None = None) -> ApiClient:
    """The API client for the real service (key from the environment) or the embedded sandbox."""
    if conn.sandbox:
        sandbox = Sandbox(
            token="sandbox",
            task_seconds=conn.sandbox_task_seconds,
            faults=Faults(fail_share=conn.sandbox_fail_share),
        )
        return ApiClient(
            IN_PROCESS_URL,
            "sandbox",
            transport=transport or SandboxTransport(sandbox),
            concurrency=conn.concurrency,
            rate=conn.rate,
            retry=conn.retry,
        )
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise ConfigError(
            f"{API_KEY_ENV} is not set",
            hint=f"export {API_KEY_ENV}=<your aireiter API key>, or try --sandbox",
        )
    base = conn.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    url = _checked_base_url(base)
    return ApiClient(
        url, key, transport=transport, concurrency=conn.concurrency, rate=conn.rate, retry=conn.retry
    )


def _checked_base_url(base: str) -> str:
    try:
        url = httpx.URL(base)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(
            f"base URL {base!r} is not an http(s) URL",
            hint=f"use --base-url or {BASE_URL_ENV}, e.g. {DEFAULT_BASE_URL}",
        )
    return base.rstrip("/")


def run(
    paths: Sequence[str],
    conn: Connection,
    ledger_path: Path,
    options: RunOptions,
    fmt: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    _, tasks = load_plan(paths)
    client = make_client(conn, transport)
    summary = _drive(tasks, client, ledger_path, options)
    _report_run(summary, ledger_path, options, fmt)
    return _run_exit_code(summary)


def status(
    paths: Sequence[str],
    conn: Connection,
    ledger_path: Path,
    refresh: bool,
    out_dir: Path,
    fmt: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    checked, tasks = load_plan(paths)
    refreshed = None
    if refresh:
        options = RunOptions(out_dir=out_dir, submit=False, wait=False, poll_once=True)
        refreshed = _drive(tasks, make_client(conn, transport), ledger_path, options, quiet=True)
    ledger = Ledger.open(ledger_path, write=False)
    rows = report.status_rows(tasks, checked, ledger.records)
    if fmt == "json":
        click.echo(report.dumps({"ledger": str(ledger_path), "manifests": rows}))
    else:
        _echo_lines(report.status_table(rows, ledger_path))
    if refreshed is not None and refreshed.unresolved:
        _echo_lines([f"imgbatch: error: {e}" for e in refreshed.errors[:5]], err=True)
        click.echo(
            f"imgbatch: {refreshed.unresolved} tasks could not be refreshed; the table shows "
            "what the ledger held",
            err=True,
        )
        return EXIT_UNREACHABLE
    return EXIT_FAILURE if any(r["failed"] for r in rows) else EXIT_OK


def _drive(
    tasks: list[Task], client: ApiClient, ledger_path: Path, options: RunOptions, *, quiet: bool = False
) -> Summary:
    ledger = Ledger.open(ledger_path, write=True)
    progress = make_progress(interactive=False if quiet else None)

    async def go() -> Summary:
        try:
            return await Runner(tasks, ledger, client, options, progress).run()
        finally:
            await client.aclose()

    try:
        return asyncio.run(go())
    finally:
        ledger.close()


def _report_run(summary: Summary, ledger_path: Path, options: RunOptions, fmt: str) -> None:
    if fmt == "json":
        click.echo(
            report.dumps({**summary.as_json(), "ledger": str(ledger_path), "images": str(options.out_dir)})
        )
        return
    _echo_lines(report.run_summary_lines(summary, ledger_path, options.out_dir), err=True)


def _run_exit_code(summary: Summary) -> int:
    if summary.unresolved:
        return EXIT_UNREACHABLE
    if summary.held_back:
        return EXIT_REFUSED
    if summary.failed:
        return EXIT_FAILURE
    return EXIT_OK
