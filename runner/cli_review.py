"""The click layer of the review and CI commands: prune, diff, report, merge-ledgers. Like
runner/cli.py it only parses options and calls one runner.commands function, imported lazily."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cliopts import LEDGER_OPTION, OUT_OPTION, PATHS, format_option, ledger_option


def register(group: click.Group) -> None:
    for command in (prune, diff, report, merge_ledgers):
        group.add_command(command)


@click.command()
@PATHS
@LEDGER_OPTION
@OUT_OPTION
@click.option("--apply", is_flag=True, help="Remove them; without it nothing is changed.")
@click.pass_context
def prune(ctx: click.Context, paths: tuple[str, ...], ledger_path: Path, out_dir: Path, apply: bool) -> None:
    """List ledger records of tasks no manifest given has any more, and their image files.

    With --apply, remove the files (only inside --out) and the records (atomic ledger rewrite).
    Give every manifest: a record is orphaned relative to the manifests given.
    """
    from runner.commands.prune import prune as command

    ctx.exit(command(paths, ledger_path, out_dir, apply))


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--since",
    metavar="REF",
    help="Compare with the manifests at this git revision (e.g. origin/main), read with git show.",
)
@ledger_option("Tasks it already holds cost nothing; the prices it has seen set the estimate.")
@format_option("text", "markdown", "json", help="markdown is a pull-request comment.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when tasks were added or removed.")
@click.pass_context
def diff(
    ctx: click.Context,
    paths: tuple[str, ...],
    since: str | None,
    ledger_path: Path,
    fmt: str,
    exit_code: bool,
) -> None:
    """Task-level changes: `diff OLD NEW` (files or folders), or `diff --since REF [PATH...]`.

    Added and removed tasks, prompts whose text or size changed (old id -> new id), the
    unchanged count, and what a run would spend. A reformat-only change is no change.
    """
    if since is None and len(paths) != 2:
        raise click.UsageError("give OLD and NEW (files or folders), or --since REF [PATH...]")
    from runner.commands.diff import diff as command

    ctx.exit(command(paths or (".",), since, ledger_path, fmt, exit_code))


@click.command("merge-ledgers")
@click.argument("ledgers", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The merged ledger (may be one of the inputs; written atomically).",
)
@click.option(
    "--base",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The common ancestor: records it has that one side removed stay removed.",
)
@click.pass_context
def merge_ledgers(ctx: click.Context, ledgers: tuple[Path, ...], out: Path, base: Path | None) -> None:
    """Merge ledgers by out_task_id, sorted and byte-stable; the more advanced record wins.

    Exit 0 merged, 1 real conflicts (one id completed with different images, records of
    different services; listed), 2 bad input. As git's merge driver: `git config merge.imgbatch.driver
    "imgbatch merge-ledgers -o %A --base %O %A %B"` and `*.ledger.jsonl merge=imgbatch` in
    .gitattributes.
    """
    from runner.commands.merge import merge_ledgers as command

    ctx.exit(command(out, ledgers, base))


@click.command()
@PATHS
@LEDGER_OPTION
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="report",
    show_default=True,
    help="Folder for index.html and its thumbnails.",
)
@click.option("--since", metavar="REF", help="Show changed prompts' old and new images side by side.")
@click.pass_context
def report(
    ctx: click.Context, paths: tuple[str, ...], ledger_path: Path, out_dir: Path, since: str | None
) -> None:
    """Write a static HTML contact sheet (OUT/index.html, thumbnails beside it): one card per
    image with prompt, size, delivered pixels, status and id; failed tasks with their error."""
    from runner.commands.report import report as command

    ctx.exit(command(paths, ledger_path, out_dir, since))
