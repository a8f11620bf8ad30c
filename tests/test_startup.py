"""Start-up stays light: commands that only read manifests must not pay for the HTTP stack,
the image library, the progress bar or the web server (imports are most of a small plan's
time). Checked in a fresh interpreter, as a user's shell runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import EXAMPLES, ROOT

HEAVY = ("httpx", "httpcore", "anyio", "rich", "PIL", "uvicorn", "h11")

PROBE = """
import json, sys
from runner.cli import cli
try:
    cli(sys.argv[1:], prog_name="imgbatch")
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["validate", "--help"],
        ["run", "--help"],
        ["validate", str(EXAMPLES / "window-cat.yaml")],
        ["plan", "--format", "jsonl", str(EXAMPLES / "window-cat.yaml")],
        ["schema"],
    ],
)
def test_reading_commands_do_not_import_the_http_image_or_ui_stack(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    assert proc.stdout, proc.stderr  # the command did its work
    assert loaded == [], f"imgbatch {' '.join(args)} imported {loaded}"
