"""Helpers shared by the tests: paths and a CLI runner around click's CliRunner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from runner.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "specs_examples"
TEST_EXAMPLES = Path(__file__).resolve().parent / "examples"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def jsonl(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run_cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> CliResult:
    """Run the imgbatch CLI in process, through the same top-level handler as the console script."""
    result = CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)
