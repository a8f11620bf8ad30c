"""On a real terminal, `run` asks before it spends; --yes, the embedded sandbox (it spends
nothing) and a missing terminal do not ask."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import ROOT, run_cli
from tests.sandbox_util import sandbox_process

KEY = "sk-tty-test-1234"
MANIFEST = """\
version: 1
name: tty
sizes: ['1:1@1K']
prompts:
  - {id: a, prompt: a cup}
  - {id: b, prompt: a jug}
"""
pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with sandbox_process("--token", KEY, "--task-seconds", "0") as url:
        yield url


def in_a_terminal(folder: Path, answer: bytes | None, *args: str) -> tuple[int, str]:
    """Run `imgbatch run ARGS m.yaml` with a pseudo-terminal as stdin, stdout and stderr."""
    leader, follower = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "--poll-interval", "0", *args, "m.yaml"],
        stdin=follower, stdout=follower, stderr=follower, cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "dumb", "AIREITER_API_KEY": KEY},
    )  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    answered = answer is None
    while time.monotonic() < deadline:
        # Read until the terminal says the child closed it (EIO), not until the child has
        # exited: the kernel hands a pty's output over asynchronously, so the last line the
        # child wrote may arrive after its exit (stopping at the exit lost it on a busy machine).
        ready, _, _ = select.select([leader], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal and everything it wrote was read
            break
        if not chunk:
            break
        seen += chunk
        if not answered and b"go ahead? [y/N]" in seen:
            os.write(leader, answer or b"")
            answered = True
    code = proc.wait(timeout=60)
    os.close(leader)
    return code, seen.decode(errors="replace")


def test_a_terminal_is_asked_and_no_sends_nothing(tmp_path: Path, server: str) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    before = httpx.get(f"{server}/sandbox/stats").json()["tasks"]  # the server is the module's
    code, text = in_a_terminal(tmp_path, b"n\n", "--base-url", server)
    assert code == 4, text
    assert "this run will submit 2 tasks, about 200 credits:" in text
    assert "not confirmed; nothing was sent" in text
    assert httpx.get(f"{server}/sandbox/stats").json()["tasks"] == before
    ledger = tmp_path / "imgbatch.ledger.jsonl"
    assert not ledger.exists() or ledger.read_text(encoding="utf-8") == ""
    code, text = in_a_terminal(tmp_path, b"y\n", "--base-url", server)
    assert code == 0, text
    assert len(ledger.read_text(encoding="utf-8").splitlines()) == 2


def test_ctrl_d_at_the_question_is_a_no(tmp_path: Path, server: str) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    before = httpx.get(f"{server}/sandbox/stats").json()["tasks"]
    exit_code, text = in_a_terminal(tmp_path, b"\x04", "--base-url", server)
    assert exit_code == 4, text
    assert "not confirmed" in text and "Aborted!" not in text and "Traceback" not in text
    assert httpx.get(f"{server}/sandbox/stats").json()["tasks"] == before


@pytest.mark.parametrize("how", ["--yes", "--sandbox"])
def test_yes_or_the_embedded_sandbox_do_not_ask_on_a_terminal(tmp_path: Path, server: str, how: str) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST.replace("name: tty", f"name: tty{how[1:]}"), encoding="utf-8")
    args = ["--yes", "--base-url", server] if how == "--yes" else [how]
    code, text = in_a_terminal(tmp_path, None, *args)
    assert code == 0, text
    assert "this run will submit 2 tasks" in text and "go ahead" not in text


def test_a_single_task_is_stated_in_the_singular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = "\n".join(line for line in MANIFEST.splitlines() if "a jug" not in line) + "\n"
    (tmp_path / "m.yaml").write_text(one, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "--sandbox", "--poll-interval", "0", "m.yaml")
    assert result.exit_code == 0, result.stderr
    assert "this run will submit 1 task, about 100 credits:" in result.stderr
    assert "tty: 1 task, about 100 credits" in result.stderr
