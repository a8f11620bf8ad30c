"""On a real terminal, `run` asks before it spends; --yes and a missing terminal do not ask."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

MANIFEST = """\
version: 1
name: tty
sizes: ['1:1@1K']
prompts:
  - {id: a, prompt: a cup}
  - {id: b, prompt: a jug}
"""


def in_a_terminal(folder: Path, answer: bytes | None, *extra: str) -> tuple[int, str]:
    """Run `imgbatch run --sandbox` with a pseudo-terminal as stdin, stdout and stderr."""
    leader, follower = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "--sandbox", "--sandbox-task-seconds", "0",
         "--poll-interval", "0", *extra, "m.yaml"],
        stdin=follower, stdout=follower, stderr=follower, cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "dumb"},
    )  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    answered = answer is None
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                seen += os.read(leader, 4096)
            except OSError:
                break
        if not answered and b"go ahead? [y/N]" in seen:
            os.write(leader, answer or b"")
            answered = True
    code = proc.wait(timeout=60)
    with_rest = seen
    try:
        while select.select([leader], [], [], 0.1)[0]:
            with_rest += os.read(leader, 4096)
    except OSError:
        pass
    os.close(leader)
    return code, with_rest.decode(errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_terminal_is_asked_and_no_sends_nothing(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    code, text = in_a_terminal(tmp_path, b"n\n")
    assert code == 4, text
    assert "this run will submit 2 tasks, about 200 credits:" in text
    assert "not confirmed; nothing was sent" in text
    ledger = tmp_path / "imgbatch.sandbox.ledger.jsonl"
    assert not ledger.exists() or ledger.read_text(encoding="utf-8") == ""
    code, text = in_a_terminal(tmp_path, b"y\n")
    assert code == 0, text
    assert len(ledger.read_text(encoding="utf-8").splitlines()) == 2


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_yes_skips_the_question_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    code, text = in_a_terminal(tmp_path, None, "--yes")
    assert code == 0, text
    assert "this run will submit 2 tasks" in text and "go ahead" not in text
