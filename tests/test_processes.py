"""Tests where a real process matters: kill -9 mid-run against a sandbox server on loopback,
and the API key never showing up in any output or file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.sandbox import Faults, Sandbox
from tests.sandbox_util import loopback, sandbox_process

KEY = "sk-live-9c4f2e1a7b3d5e6f"
MANIFEST = """\
version: 1
name: crash
sizes: ['1:1@1K', '4:3@1K', '3:4@1K']
prompts:
""" + "".join(f"  - {{id: p{i}, prompt: subject {i}}}\n" for i in range(5))


@pytest.fixture
def server() -> Iterator[str]:
    with sandbox_process(
        "--token",
        KEY,
        "--task-seconds",
        "0.8",
        "--latency",
        "0.02",
        "--lost-submit-share",
        "0.15",
        "--error-share",
        "0.05",
        "--seed",
        "3",
    ) as url:
        yield url


def imgbatch(tmp: Path, url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "runner",
        "run",
        "--base-url",
        url,
        "--ledger",
        str(tmp / "ledger.jsonl"),
        "--out",
        str(tmp / "images"),
        "--poll-interval",
        "0.1",
        "--concurrency",
        "4",
        "--lost-after",
        "0.3",
        *extra,
        str(tmp / "m.yaml"),
    ]


def env() -> dict[str, str]:
    return {**os.environ, "AIREITER_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}


def rerun_until_done(tmp: Path, url: str) -> subprocess.CompletedProcess[str]:
    """Rerun as a user would after a cut-short run. The server answers 5% of requests 5xx, so
    an image can miss all its attempts: the run then exits 5 and says to rerun (paid tasks are
    downloaded, never submitted again)."""
    for _ in range(3):
        run = subprocess.run(
            imgbatch(tmp, url), env=env(), cwd=tmp, capture_output=True, text=True, timeout=120
        )
        if run.returncode != 5:
            return run
        assert "rerun the same command" in run.stderr
    return run


def test_kill_9_at_several_moments_then_rerun_submits_nothing_twice(tmp_path: Path, server: str) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    ledger = tmp_path / "ledger.jsonl"

    def stats() -> dict[str, Any]:
        return dict(httpx.get(f"{server}/sandbox/stats").json())

    def images() -> int:
        return len([p for p in (tmp_path / "images").rglob("*.png") if not p.name.startswith(".")])

    def held_by(pid: int) -> bool:
        lock = tmp_path / "ledger.jsonl.lock"
        return lock.exists() and lock.read_text(encoding="utf-8").strip() == str(pid)

    def grows(count: Callable[[], int], by: int) -> Callable[[], Callable[[int], bool]]:
        def start() -> Callable[[int], bool]:
            before = count()
            return lambda pid: count() >= before + by

        return start

    # Each run is killed once it has got this far, not after a fixed delay: a loaded machine
    # starts a process late, and a run killed after 0.5 s had then often sent nothing at all.
    moments: list[Callable[[], Callable[[int], bool]]] = [
        lambda: held_by,  # just started: the lock taken
        grows(lambda: int(stats()["tasks"]), 1),  # a submit accepted, its answer perhaps not recorded
        grows(lambda: int(stats()["requests"].get("/api/openapi/query", 0)), 1),  # polling
        grows(lambda: int(stats()["requests"].get("/files/", 0)), 1),  # an image being fetched
        grows(images, 2),  # images landing, perhaps not recorded yet
    ]
    for n, moment in enumerate(moments):
        reached = moment()
        proc = subprocess.Popen(
            imgbatch(tmp_path, server),
            env=env(),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60  # against a hang only
        while proc.poll() is None and not reached(proc.pid):
            assert time.monotonic() < deadline, f"run {n + 1} never got to its moment"
            time.sleep(0.01)
        running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # 15 tasks are far from done before the last moment: those runs were cut short.
        assert running or n == len(moments) - 1, f"run {n + 1} ended before it was killed"
        if ledger.exists():  # never half-written: every line is a whole record
            for line in ledger.read_text(encoding="utf-8").splitlines():
                assert json.loads(line)["out_task_id"]
    final = rerun_until_done(tmp_path, server)
    assert final.returncode == 0, final.stderr
    assert stats()["submitted_twice"] == []
    assert stats()["tasks"] == 15
    records = [json.loads(x) for x in ledger.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 15 and all(r["status"] == "completed" for r in records)
    for r in records:
        assert (ledger.parent / r["outputs"][0]["path"]).is_file()
    again = subprocess.run(
        imgbatch(tmp_path, server), env=env(), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and "0 requests" in again.stderr


class HeldClock:
    """The sandbox's clock, stopped until release(): no task of the first run can complete
    while the second one is tried, however slowly the two processes start on a loaded machine
    (a sandbox on the real clock let the first run finish before the second reached the lock)."""

    def __init__(self) -> None:
        self.held_at = time.monotonic()
        self.held = True

    def __call__(self) -> float:
        return self.held_at if self.held else time.monotonic()

    def release(self) -> None:
        self.held = False


def test_two_runs_on_one_ledger_at_once(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    clock = HeldClock()
    faults = Faults(latency=0.02, lost_submit_share=0.15, error_share=0.05)
    sandbox = Sandbox(token=KEY, task_seconds=0.8, faults=faults, seed=3, clock=clock)
    with loopback(sandbox) as server:
        first = subprocess.Popen(
            imgbatch(tmp_path, server),
            env=env(),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # The first run holds the lock once it has written its pid there (start-up time
            # varies with the machine's load, so wait for that rather than for a fixed time).
            lock = tmp_path / "ledger.jsonl.lock"
            deadline = time.monotonic() + 60
            while not (lock.exists() and lock.read_text(encoding="utf-8").strip()):
                assert time.monotonic() < deadline and first.poll() is None, (
                    "the first run never took the lock"
                )
                time.sleep(0.05)
            second = subprocess.run(
                imgbatch(tmp_path, server),
                env=env(),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert first.poll() is None  # no task could complete: the first run is still going
            clock.release()
            _, first_err = first.communicate(timeout=120)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=10)
        assert first.returncode == 0, first_err
        assert second.returncode == 4, second.stderr
        assert f"is in use by another imgbatch run (pid {first.pid})" in second.stderr
        assert sandbox.submitted_twice() == [] and len(sandbox.tasks) == 15


def all_text_under(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def test_the_key_appears_in_no_output_and_no_file(tmp_path: Path, server: str) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    outputs = []
    for extra in (
        [],
        ["--format", "json"],
        ["--base-url", "http://127.0.0.1:9", "--retries", "1"],
        ["--base-url", "not a url"],
    ):
        proc = subprocess.run(
            imgbatch(tmp_path, server, *extra),
            env=env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        outputs += [proc.stdout, proc.stderr]
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    wrong = subprocess.run(
        imgbatch(tmp_path / "w", server),
        env={**env(), "AIREITER_API_KEY": KEY[::-1]},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert wrong.returncode == 3 and "refused" in wrong.stderr
    outputs += [wrong.stdout, wrong.stderr]
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "status",
            "--refresh",
            "--base-url",
            server,
            "--ledger",
            str(tmp_path / "ledger.jsonl"),
            str(tmp_path / "m.yaml"),
        ],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    outputs += [status.stdout, status.stderr]
    assert (tmp_path / "ledger.jsonl").exists()
    for text in [*outputs, all_text_under(tmp_path)]:
        assert KEY not in text and KEY[::-1] not in text


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_mid_run_ends_like_ctrl_c_with_143_and_the_rerun_finishes(
    tmp_path: Path, server: str, sigint: str
) -> None:
    # CI cancels a job with SIGTERM, and a job started in the background by a non-interactive
    # shell has SIGINT ignored: in both cases the run must stop cleanly, say so, and resume.
    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    proc = subprocess.Popen(
        imgbatch(tmp_path, server, "--format", "json"),
        env=env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint if sigint == "ignored" else None,
    )
    journal = tmp_path / "ledger.jsonl.journal"
    deadline = time.monotonic() + 30
    while not (journal.exists() and journal.stat().st_size) and proc.poll() is None:  # a submit is recorded
        assert time.monotonic() < deadline, "the run never recorded a submit"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "imgbatch: terminated (SIGTERM); rerun the same command to resume" in err
    assert "Traceback" not in err
    assert json.loads(out)["error"]["exit_code"] == 143
    final = rerun_until_done(tmp_path, server)
    assert final.returncode == 0, final.stderr
    stats = httpx.get(f"{server}/sandbox/stats").json()
    assert stats["submitted_twice"] == []
    assert stats["tasks"] == 15
