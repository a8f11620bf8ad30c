"""'in use by pid N' names the process that holds the ledger's lock, or no pid at all: never a
previous holder's. Real processes: the lock is a flock between processes, and the pid a number
another process reads from the lock file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

MANIFEST = "version: 1\nname: lock\nsizes: ['1:1@1K']\nprompts:\n  - {id: a, prompt: a mug}\n"

# A process that holds the ledger as imgbatch does (Ledger.open takes the lock and writes its
# pid), says so, and then releases it or keeps it as told.
HOLDER = """
import sys, time
from pathlib import Path
from runner.ledger import Ledger
ledger = Ledger.open(Path(sys.argv[1]), write=True)
if sys.argv[2] == "release":
    ledger.close()
print("ready", flush=True)
time.sleep(120)
"""
# The next holder in the moment between taking the lock and writing its pid: the lock alone.
BARE_LOCK = """
import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f.fileno(), fcntl.LOCK_EX)
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def _start(started: list[subprocess.Popen[str]], script: str, *args: str) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    started.append(p)
    assert p.stdout is not None and p.stdout.readline() == "ready\n", "the holder never got ready"
    return p


def _refused_run(tmp: Path) -> subprocess.CompletedProcess[str]:
    (tmp / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "runner", "run", "--sandbox", "--ledger", str(tmp / "l.jsonl"),
         "--out", str(tmp / "img"), str(tmp / "m.yaml")],
        capture_output=True, text=True, timeout=60, cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )  # fmt: skip


def test_the_refusal_names_the_pid_of_the_process_holding_the_lock(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    holder = _start(processes, HOLDER, str(tmp_path / "l.jsonl"), "hold")
    result = _refused_run(tmp_path)
    assert result.returncode == 4, result.stderr
    assert f"l.jsonl is in use by another imgbatch run (pid {holder.pid})" in result.stderr


def test_a_killed_holders_pid_is_not_shown_for_the_next_holder(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    ledger = tmp_path / "l.jsonl"
    killed = _start(processes, HOLDER, str(ledger), "hold")
    killed.kill()
    killed.wait(timeout=10)  # reaped: its pid runs no more
    _start(processes, BARE_LOCK, str(tmp_path / "l.jsonl.lock"))
    result = _refused_run(tmp_path)
    assert result.returncode == 4, result.stderr
    assert f"pid {killed.pid}" not in result.stderr
    assert "l.jsonl is in use by another imgbatch process;" in result.stderr


def test_a_previous_holder_still_running_is_not_shown_for_the_next_holder(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    # The first holder let go of the lock and lives on; the second has taken it and not yet
    # written its pid. The first is no holder any more, whatever it is doing.
    ledger = tmp_path / "l.jsonl"
    previous = _start(processes, HOLDER, str(ledger), "release")
    _start(processes, BARE_LOCK, str(tmp_path / "l.jsonl.lock"))
    result = _refused_run(tmp_path)
    assert result.returncode == 4, result.stderr
    assert f"pid {previous.pid}" not in result.stderr
    assert "l.jsonl is in use by another imgbatch process;" in result.stderr
