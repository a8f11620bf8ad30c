"""Option declarations several commands share. Only click is imported here: `--help` stays quick."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.errordoc import remember_format
from runner.errors import ImgbatchError
from runner.ledger import DEFAULT_LEDGER
from runner.limits import DEFAULT_MAX_PLAN_TASKS, PLAN_LIMIT_KEY

if TYPE_CHECKING:
    from runner.shard import Shard

SHARE = click.FloatRange(0.0, 1.0)
PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path())


def ledger_option(
    help: str = "The results ledger (JSON Lines; keep it in git).",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--ledger",
        "ledger_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_LEDGER,
        show_default=True,
        help=help,
    )


def format_option(
    *choices: str, help: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--format`, the first choice the default; the top-level handler learns the choice, so an
    error too comes out as one JSON document when it is json."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        callback=remember_format,
        help=help,
    )


LEDGER_OPTION = ledger_option()
OUT_OPTION = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="images",
    show_default=True,
    help="Folder for the downloaded images, named by out_task_id.",
)


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> Shard | None:
    from runner.shard import parse_shard

    if value is None:
        return None
    try:
        return parse_shard(value)
    except ImgbatchError as e:
        raise click.BadParameter(e.hint, ctx, param) from None


SHARD_OPTION = click.option(
    "--shard",
    callback=_shard,
    metavar="I/N",
    help="Only the I-th of N parts of the tasks (1-based), split by a hash of out_task_id.",
)


def _remember_plan_limit(ctx: click.Context, param: click.Parameter, value: int) -> int:
    # Left in the context's meta (shared by nested contexts) for runner.commands._common, so
    # no command function needs a parameter for it.
    ctx.meta[PLAN_LIMIT_KEY] = value
    return value


MAX_PLAN_TASKS = click.option(
    "--max-plan-tasks",
    type=click.IntRange(1),
    default=DEFAULT_MAX_PLAN_TASKS,
    show_default=True,
    expose_value=False,
    callback=_remember_plan_limit,
    help="Refuse manifests that expand to more tasks than this (all manifests given, together).",
)
