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
        # The table reads the ledger and the image files; only --refresh talks to the service.
        ["status", "--ledger", str(EXAMPLES / "no-such.ledger.jsonl"), str(EXAMPLES / "window-cat.yaml")],
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


def test_httpcore_finds_sniffio_so_no_request_pays_for_a_failed_import() -> None:
    # httpcore imports sniffio inside the function it calls several times per request; when
    # sniffio is missing, each of those calls searches sys.path and fails (about 60 us).
    import asyncio
    import importlib.util

    from httpcore._synchronization import current_async_library

    assert importlib.util.find_spec("sniffio") is not None, "sniffio must be installed (pyproject)"

    async def inside() -> str:
        return current_async_library()

    assert asyncio.run(inside()) == "asyncio"


def test_run_does_not_load_httpx_command_line_tool() -> None:
    # httpx's own CLI pulls in pygments and rich (~40 ms before a run's first request);
    # rich is loaded only for a terminal's progress bar.
    probe = (
        "import json, sys; import runner.commands.run, runner.commands.status; "
        "print(json.dumps(sorted(m for m in ('pygments', 'rich', 'httpx._main') if sys.modules.get(m))))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(proc.stdout) == []
