"""imgbatch diff: task-level changes between two sets of manifests, or since a git ref."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runner import diffing, diffrender, report
from runner.commands._common import echo_lines, load_plan
from runner.errors import EXIT_FAILURE, EXIT_OK, ManifestInvalid
from runner.gitsource import manifests_at
from runner.ledger import Ledger
from runner.manifest import CheckedFile, Manifest


def diff(
    paths: Sequence[str], since: str | None, ledger_path: Path, fmt: str, exit_code: bool = False
) -> int:
    if since is not None:
        old = old_side(since, paths)
        new_paths = paths
    else:
        old = diffing.side(paths[0], _valid(load_plan([paths[0]])[0], paths[0]))
        new_paths = paths[1:]
    checked, _ = load_plan(new_paths)
    label = "working tree" if since is not None else paths[1]
    new = diffing.side(label, (cf.manifest for cf in checked if cf.manifest is not None))
    records = Ledger.open(ledger_path, write=False).records
    d = diffing.diff(old, new, records)
    echo_lines(diffrender.render(d, fmt))
    return EXIT_FAILURE if exit_code and not d.empty else EXIT_OK


def old_side(since: str, paths: Sequence[str]) -> diffing.Side:
    """The manifests under `paths` as they were at git revision `since`."""
    return diffing.side(since, _valid(manifests_at(since, paths), since))


def _valid(checked: list[CheckedFile], label: str) -> list[Manifest]:
    """The old side must be valid too: its ids are what the ledger holds."""
    echo_lines(report.diagnostics_lines(checked, "text"), err=True)
    bad = [cf.file for cf in checked if not cf.ok]
    if bad:
        raise ManifestInvalid(
            f"the old side ({label}) has invalid manifests: {', '.join(bad)}",
            hint="a diff compares valid manifests; fix or compare another revision",
        )
    return [cf.manifest for cf in checked if cf.manifest is not None]
