"""No internal errors where the cause is known: --out, full disk, leftover temp files, odd
ledger lines, a service that cannot be reached, two runs sharing one image folder."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from runner.errors import ImgbatchError
from tests.helpers import run_cli
from tests.sandbox_util import sandbox_process
from tests.test_run import World

KEY = "sk-live-robust-4d2c"
MANIFEST = """\
version: 1
name: sturdy
sizes: ['1:1@1K', '16:9@1K']
prompts:
  - {id: a, prompt: subject a}
  - {id: b, prompt: subject b}
  - {id: c, prompt: subject c}
"""


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., World]:
    return lambda **kw: World(tmp_path, monkeypatch, capsys, **kw)


@pytest.fixture
def server() -> Iterator[str]:
    with sandbox_process("--token", KEY, "--task-seconds", "0.3", "--image-host", "127.0.0.2") as url:
        yield url


def imgbatch(folder: Path, url: str, *extra: str, ledger: str = "ledger.jsonl") -> list[str]:
    return [
        sys.executable, "-m", "runner", "run", "--base-url", url, "--ledger", str(folder / ledger),
        "--out", str(folder / "images"), "--poll-interval", "0.1", "--lost-after", "0.3", *extra,
        str(folder / "m.yaml"),
    ]  # fmt: skip


def env() -> dict[str, str]:
    return {**os.environ, "AIREITER_API_KEY": KEY}


@pytest.mark.parametrize("blocker", ["file", "file-parent"])
def test_an_unwritable_out_is_found_before_anything_is_submitted(
    world: Callable[..., World], blocker: str
) -> None:
    w = world()
    (w.tmp / "taken").write_text("a file in the way", encoding="utf-8")
    w.out = w.tmp / "taken" if blocker == "file" else w.tmp / "taken" / "images"
    with pytest.raises(ImgbatchError) as e:
        w.run()
    assert e.value.exit_code == 2 and f"--out {w.out}: cannot write images there" in str(e.value)
    assert sum(w.sandbox.requests.values()) == 0 and not w.ledger.exists()


def test_a_wrong_type_in_a_known_ledger_field_gets_the_line_level_message(
    world: Callable[..., World],
) -> None:
    w = world()
    assert w.run()[0] == 0
    lines = w.ledger.read_text(encoding="utf-8").splitlines()
    lines[2] = json.dumps({**json.loads(lines[2]), "outputs": 5})
    broken = "\n".join(lines) + "\n"
    w.ledger.write_text(broken, encoding="utf-8")
    for args in (["run", "--sandbox"], ["status"]):
        result = run_cli(*args, "--ledger", str(w.ledger), str(w.manifest))
        assert result.exit_code == 2
        assert f"{w.ledger}:3:1: not a ledger record (outputs is an integer, not a list)" in result.stderr
        assert "internal error" not in result.stderr
    assert w.ledger.read_text(encoding="utf-8") == broken


def test_temp_files_of_a_killed_ledger_rewrite_are_removed_by_the_next_run(
    world: Callable[..., World],
) -> None:
    w = world()
    stale = [w.tmp / f".{w.ledger.name}.{pid}.tmp" for pid in (4242, 4343)]
    for path in stale:
        path.write_text("half a ledger", encoding="utf-8")
    other = w.tmp / ".another.ledger.jsonl.4242.tmp"  # another ledger's: not ours to touch
    mine = w.tmp / f".{w.ledger.name}.mynotes.tmp"  # a user's own file: not of our making
    for path in (other, mine):
        path.write_text("x", encoding="utf-8")
    assert w.run()[0] == 0
    assert not any(p.exists() for p in stale) and other.exists() and mine.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_partial_downloads_of_killed_runs_are_removed_and_a_live_runs_are_kept(
    world: Callable[..., World],
) -> None:
    w = world()
    w.out.mkdir()
    alive = subprocess.Popen(["sleep", "60"])  # another run sharing the folder, still writing
    try:
        dead = [w.out / f".mq.p{i}.6d14a2245158386526bb.{_dead_pid()}.0a1b2c3d.part" for i in (1, 2)]
        dead.append(w.out / f".imgbatch-write-test.{_dead_pid()}.0a1b2c3d")  # a killed run's probe
        live = w.out / f".mq.p3.6d14a2245158386526bb.{alive.pid}.0a1b2c3d.part"
        users = w.out / ".notes.12.part"  # not our pattern
        for path in (*dead, live, users):
            path.write_bytes(b"\0" * 1024)
        assert w.run()[0] == 0
        assert not any(p.exists() for p in dead)
        assert live.exists() and users.exists()
    finally:
        alive.kill()
        alive.wait()


def test_a_hard_linked_ledger_is_refused_before_anything_is_sent(world: Callable[..., World]) -> None:
    w = world()
    w.run(wait=False)
    (w.tmp / "b").mkdir()
    os.link(w.ledger, w.tmp / "b" / w.ledger.name)
    requests = sum(w.sandbox.requests.values())
    with pytest.raises(ImgbatchError) as e:
        w.run()
    assert "hard links" in str(e.value) and e.value.exit_code == 2
    assert sum(w.sandbox.requests.values()) == requests


def test_a_service_that_cannot_be_reached_is_reported_within_seconds(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    started = time.monotonic()
    proc = subprocess.run(
        imgbatch(tmp_path, "http://127.0.0.1:9"), env=env(), capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - started < 10
    assert proc.returncode == 5
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("imgbatch: error: cannot connect to 127.0.0.1:9")


def test_a_base_url_that_would_double_the_api_path_is_refused_with_the_right_form(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    for given in (
        "https://aireiter.com/api/openapi",
        "https://aireiter.com/api/openapi/submit/",
        "https://aireiter.com/API/OpenAPI",
        "https://aireiter.com/api//openapi",
    ):
        proc = subprocess.run(imgbatch(tmp_path, given), env=env(), capture_output=True, text=True)
        assert proc.returncode == 3
        assert "give the site only: --base-url https://aireiter.com" in proc.stderr
    assert not (tmp_path / "ledger.jsonl").exists()


@pytest.mark.parametrize(
    ("kilobytes", "what"),
    [(16, "cannot write {images}"), (3, "{journal}: cannot record a change")],
)
def test_a_full_disk_names_the_path_keeps_the_ledger_and_the_next_run_recovers(
    tmp_path: Path, server: str, kilobytes: int, what: str
) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")

    def small_files() -> None:  # as if the disk filled up: no file may grow past the limit
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (kilobytes * 1024, kilobytes * 1024))

    full = subprocess.run(
        imgbatch(tmp_path, server),
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=small_files,
    )  # images are about 24 KB, the journal of six records about 5 KB
    assert full.returncode == 2, full.stderr
    where = what.format(images=tmp_path / "images", journal=tmp_path / "ledger.jsonl.journal")
    assert where in full.stderr and "File too large" in full.stderr
    assert "internal error" not in full.stderr
    again = subprocess.run(imgbatch(tmp_path, server), env=env(), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    stats = httpx.get(f"{server}/sandbox/stats").json()
    assert stats["submitted_twice"] == [] and stats["tasks"] == 6
    assert stats["image_requests_with_authorization"] == 0


def test_two_runs_with_their_own_ledgers_share_one_image_folder(tmp_path: Path, server: str) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    procs = [
        subprocess.Popen(
            imgbatch(tmp_path, server, ledger=f"ledger-{i}.jsonl"),
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    images = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert len(images) == 6 and not [n for n in images if n.startswith(".")]
    for i in (1, 2):
        for line in (tmp_path / f"ledger-{i}.jsonl").read_text(encoding="utf-8").splitlines():
            assert (tmp_path / json.loads(line)["outputs"][0]["path"]).is_file()
    stats = httpx.get(f"{server}/sandbox/stats").json()
    assert stats["tasks"] == 6  # the second run adopted the first one's tasks: nothing paid twice


def test_a_disk_already_full_under_the_ledger_names_the_lock_file(tmp_path: Path, server: str) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")

    def full_disk() -> None:  # no file may grow at all, not even by the few bytes of a pid
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    proc = subprocess.run(
        imgbatch(tmp_path, server),
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=full_disk,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{tmp_path / 'ledger.jsonl.lock'}: cannot write the lock file" in proc.stderr
    assert "internal error" not in proc.stderr and "free space and rerun" in proc.stderr
    assert httpx.get(f"{server}/sandbox/stats").json()["tasks"] == 0


def test_a_bad_journal_line_is_not_sent_to_git_for_a_fix(world: Callable[..., World]) -> None:
    w = world()
    w.run(wait=False)
    journal = w.ledger.with_name(w.ledger.name + ".journal")
    good = json.dumps(w.records()[0]) + "\n"
    journal.write_text("{not json\n" + good, encoding="utf-8")  # not the torn last line
    with pytest.raises(ImgbatchError) as e:
        w.run()
    assert f"{journal}:1:" in str(e.value) and e.value.exit_code == 2
    assert "git checkout" not in str(e.value) and "not in git" in str(e.value)
