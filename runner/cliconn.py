"""Option declarations of the commands that talk to the service (run, status): which service
(--base-url, --sandbox, --retries), where the ledger and images go, the download bounds, and
their conversion into a Connection. Only click is imported here: `--help` stays quick."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.cliopts import SHARE
from runner.ledger import DEFAULT_LEDGER, DEFAULT_OUT, SANDBOX_LEDGER, SANDBOX_OUT

if TYPE_CHECKING:
    from runner.commands.connection import Connection


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
