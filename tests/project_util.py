"""A manifest folder with a ledger and images, run against the embedded sandbox in process:
the setting of the review and CI commands (plan --ledger, prune, diff, report, merge)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from tests.helpers import CliResult, run_cli

SHOTS = """\
version: 1
name: shots
sizes: ['1:1@1K', '16:9@1K']
prompts:
  - {id: mug, prompt: a mug}
  - {id: pot, prompt: a teapot}
"""


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifests = root / "manifests"
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.ledger = root / "imgbatch.ledger.jsonl"
        self.out = root / "images"

    def write(self, text: str, name: str = "shots.yaml") -> Path:
        path = self.manifests / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def cli(self, *args: str) -> CliResult:
        return run_cli(*args)

    def run(self, *extra: str, fail_share: float = 0.0) -> CliResult:
        return run_cli(
            "run",
            str(self.manifests),
            "--sandbox",
            "--sandbox-task-seconds",
            "0.02",
            "--sandbox-fail-share",
            str(fail_share),
            "--poll-interval",
            "0.01",
            "--ledger",
            str(self.ledger),
            "--out",
            str(self.out),
            "--format",
            "json",
            *extra,
        )

    def plan(self, *extra: str) -> CliResult:
        return run_cli("plan", str(self.manifests), "--ledger", str(self.ledger), *extra)

    def records(self) -> dict[str, dict[str, Any]]:
        if not self.ledger.exists():
            return {}
        lines = self.ledger.read_text(encoding="utf-8").splitlines()
        return {r["out_task_id"]: r for r in map(json.loads, lines)}

    def put_records(self, records: dict[str, dict[str, Any]]) -> None:
        text = "".join(json.dumps(records[k], sort_keys=True) + "\n" for k in sorted(records))
        self.ledger.write_text(text, encoding="utf-8")

    def image(self, out_task_id: str) -> Path:
        return self.ledger.parent / self.records()[out_task_id]["outputs"][0]["path"]
