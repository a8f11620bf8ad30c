"""imgbatch run and status end to end against the in-process sandbox."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from runner.client import RetryPolicy
from runner.commands.connection import Connection
from runner.commands.run import run as run_command
from runner.commands.status import status as status_command
from runner.errors import ImgbatchError
from runner.ledger import Ledger
from runner.run import RunOptions
from runner.sandbox import Faults, Sandbox
from runner.sandbox.transport import IN_PROCESS_URL, SandboxTransport
from runner.schema import load_schema
from tests.helpers import run_cli
from tests.sandbox_util import loopback

FAST = RetryPolicy(attempts=8, base=0.005, cap=0.05)
MANIFEST = """\
version: 1
name: shots
sizes: ['1:1@1K', '16:9@1K']
prompts:
  - {id: mug, prompt: a mug}
  - {id: pot, prompt: a teapot}
  - {id: tote, prompt: a tote bag, metadata: {sku: T1}}
"""


class World:
    """A manifest, a sandbox and a ledger in a temp folder; runs imgbatch in process."""

    def __init__(
        self,
        tmp: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        manifest: str = MANIFEST,
        **sandbox: Any,
    ) -> None:
        self.tmp = tmp
        self.manifest = tmp / "shots.yaml"
        self.manifest.write_text(manifest, encoding="utf-8")
        self.ledger = tmp / "imgbatch.ledger.jsonl"
        self.out = tmp / "images"
        self.sandbox = Sandbox(token="sk-test-secret-77", task_seconds=0.05, **sandbox)
        self.capsys = capsys
        monkeypatch.setenv("AIREITER_API_KEY", "sk-test-secret-77")

    def run(self, url: str | None = None, **options: Any) -> tuple[int, dict[str, Any]]:
        """Run in process, or against `url` (the sandbox served on loopback)."""
        options.setdefault("lost_after", 0.3)  # denials of an unconfirmed submit over 0.3 s, not 60
        opts = RunOptions(**{"out_dir": self.out, "poll_interval": 0.01, "compact_every": 0.05, **options})
        conn = Connection(base_url=url or IN_PROCESS_URL, sandbox=False, retry=FAST)
        self.capsys.readouterr()
        transport = None if url else SandboxTransport(self.sandbox)
        code = run_command([str(self.manifest)], conn, self.ledger, opts, "json", transport=transport)
        return code, json.loads(self.capsys.readouterr().out)

    def status(self, refresh: bool = False) -> tuple[int, dict[str, Any]]:
        conn = Connection(base_url=IN_PROCESS_URL, sandbox=False, retry=FAST)
        self.capsys.readouterr()
        code = status_command(
            [str(self.manifest)],
            conn,
            self.ledger,
            refresh,
            self.out,
            "json",
            transport=SandboxTransport(self.sandbox),
        )
        return code, json.loads(self.capsys.readouterr().out)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.ledger.read_text(encoding="utf-8").splitlines()]


def run_until_settled(w: World, url: str | None) -> tuple[list[int], int]:
    """Rerun until no task is left unconfirmed, as a user would after exit 5."""
    codes, adopted = [], 0
    for _ in range(6):
        code, summary = w.run(url)
        codes.append(code)
        adopted += summary["adopted"]
        if code in (0, 1):
            break
    return codes, adopted


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., World]:
    return lambda **kw: World(tmp_path, monkeypatch, capsys, **kw)


def test_a_run_completes_downloads_and_records_everything(world: Callable[..., World]) -> None:
    w = world()
    code, summary = w.run()
    assert code == 0 and summary["completed"] == 6 and summary["submitted"] == 6
    records = w.records()
    assert [r["out_task_id"] for r in records] == sorted(r["out_task_id"] for r in records)
    for line in w.ledger.read_text(encoding="utf-8").splitlines():
        assert list(json.loads(line)) == sorted(json.loads(line))  # keys sorted
    for r in records:
        assert r["status"] == "completed" and r["task_id"].startswith("sbx_")
        assert r["estimated_credits"] == 100 and r["credits_used"] == 100
        assert r["created_at"] and r["completed_at"] and r["error"] is None
        [out] = r["outputs"]
        image = w.ledger.parent / out["path"]
        assert image.name == f"{r['out_task_id']}.png"
        assert hashlib.sha256(image.read_bytes()).hexdigest() == out["sha256"]
        assert list(Image.open(image).size) == [out["width"], out["height"]] == r["pixels"]
    tote = [r for r in records if r["prompt_id"] == "tote"]
    assert all(r["metadata"] == {"sku": "T1"} for r in tote)
    assert w.sandbox.submitted_twice() == []


def test_a_rerun_of_a_finished_manifest_sends_nothing_and_changes_no_byte(
    world: Callable[..., World],
) -> None:
    w = world()
    assert w.run()[0] == 0
    before = w.ledger.read_bytes()
    requests = sum(w.sandbox.requests.values())
    code, summary = w.run()
    assert code == 0 and summary["requests"] == 0
    assert sum(w.sandbox.requests.values()) == requests
    assert w.ledger.read_bytes() == before
    assert not w.ledger.with_name(w.ledger.name + ".journal").exists()


@pytest.mark.parametrize("mode", ["in-process", "loopback"])
def test_every_fault_knob_on_never_submits_twice_and_ends_complete(
    world: Callable[..., World], mode: str
) -> None:
    manifest = MANIFEST.replace(
        "sizes: ['1:1@1K', '16:9@1K']", "sizes: ['1:1@1K', '16:9@1K', '4:3@1K', '2048x2048']"
    )
    w = world(
        manifest=manifest,
        seed=7,
        faults=Faults(
            latency=0.001,
            rate_limit=60,
            error_share=0.15,
            lost_submit_share=0.2,
            malformed_share=0.1,
            envelope_error_share=0.1,
            fail_share=0.2,
        ),
    )
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(loopback(w.sandbox)) if mode == "loopback" else None
        codes, adopted = run_until_settled(w, url)
    assert codes[-1] == 1  # done; some tasks failed by design
    records = w.records()
    assert len(records) == 12
    assert {r["status"] for r in records} <= {"completed", "failed"}
    assert any(r["status"] == "failed" for r in records)
    assert w.sandbox.submitted_twice() == []
    assert len(w.sandbox.tasks) == 12  # one upstream task per planned task, no more
    assert adopted >= 1  # lost submits were found by query and adopted, not resubmitted
    # Faults made the client work for it (5xx, broken answers, 429s paced by the gate).
    assert sum(w.sandbox.requests.values()) > 12 * 3


def test_failed_tasks_are_kept_and_retried_only_on_request(world: Callable[..., World]) -> None:
    w = world(faults=Faults(fail_share=1.0))
    code, summary = w.run()
    assert code == 1 and summary["failed"] == 6
    assert all(r["status"] == "failed" and r["error"] for r in w.records())
    code, summary = w.run()
    assert code == 1 and summary["requests"] == 0  # not resubmitted without --retry-failed
    w.sandbox.faults.fail_share = 0.0
    code, summary = w.run(retry_failed=True)
    assert code == 0 and summary["completed"] == 6
    for r in w.records():
        assert r["attempt"] == 2 and r["submit_id"] == f"{r['out_task_id']}-r2"
    assert w.sandbox.submitted_twice() == []


def test_max_tasks_and_max_credits_refuse_before_sending_anything(world: Callable[..., World]) -> None:
    w = world()
    for kwargs, text in (({"max_tasks": 5}, "--max-tasks 5"), ({"max_credits": 599}, "--max-credits 599")):
        with pytest.raises(Exception) as e:
            w.run(**kwargs)
        assert getattr(e.value, "exit_code", None) == 4
        assert "would submit 6 tasks, about 600 credits" in str(e.value) and text in str(e.value)
        assert "nothing was sent" in str(e.value)
    assert sum(w.sandbox.requests.values()) == 0
    assert not w.ledger.exists()
    assert w.run(max_tasks=6, max_credits=600)[0] == 0


def test_max_credits_fails_closed_when_the_service_prices_higher(world: Callable[..., World]) -> None:
    w = world(credits_per_task=250)
    code, summary = w.run(max_credits=600)  # the estimate (100 a task) passes; the price does not
    assert code == 4 and summary["held_back"] >= 1
    assert summary["credits_estimated"] <= 600
    assert sum(1 for r in w.records()) == summary["submitted"] == 2


def test_no_wait_then_status_refresh_picks_the_tasks_up(world: Callable[..., World]) -> None:
    w = world()
    code, summary = w.run(wait=False)
    assert code == 0 and summary["running"] == 6 and summary["downloads"] == 0
    import time

    time.sleep(0.1)
    code, report = w.status(refresh=True)
    assert code == 0
    [row] = report["manifests"]
    assert row["completed"] == 6 and row["images"] == 6
    assert w.sandbox.submitted_twice() == []


def test_status_reads_the_ledger_per_manifest(world: Callable[..., World]) -> None:
    w = world()
    code, report = w.status()
    assert report["manifests"][0]["not_submitted"] == 6
    w.run()
    code, report = w.status()
    assert code == 0 and report["manifests"][0]["completed"] == 6
    text = run_cli("status", "--ledger", str(w.ledger), str(w.manifest))
    assert text.exit_code == 0 and "shots" in text.stdout and "COMPLETED" in text.stdout


def test_a_changed_prompt_submits_only_its_new_tasks(world: Callable[..., World]) -> None:
    w = world()
    w.run()
    w.manifest.write_text(MANIFEST.replace("a teapot", "a blue teapot"), encoding="utf-8")
    code, summary = w.run()
    assert code == 0 and summary["submitted"] == 2
    assert len(w.records()) == 8  # the old records stay: history, not deleted


def test_ledger_records_match_the_ledger_schema(world: Callable[..., World]) -> None:
    from jsonschema import Draft202012Validator

    w = world(faults=Faults(fail_share=0.5))
    w.run()
    schema = load_schema("ledger-record.schema.json")
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for r in w.records():
        assert list(validator.iter_errors(r)) == []


def test_a_held_lock_stops_a_second_run(world: Callable[..., World]) -> None:
    w = world()
    held = Ledger.open(w.ledger, write=True)
    try:
        with pytest.raises(Exception) as e:
            w.run()
        assert getattr(e.value, "exit_code", None) == 4 and "in use by another imgbatch run" in str(e.value)
    finally:
        held.close()
    assert w.run()[0] == 0


def test_a_corrupt_ledger_is_never_overwritten(world: Callable[..., World]) -> None:
    w = world()
    w.run()
    text = w.ledger.read_text(encoding="utf-8")
    broken = text.replace("}\n", "}\n{oops\n", 1)
    w.ledger.write_text(broken, encoding="utf-8")
    with pytest.raises(Exception) as e:
        w.run()
    assert f"{w.ledger}:2:2: not a ledger record" in str(e.value)
    assert w.ledger.read_text(encoding="utf-8") == broken


def test_a_torn_journal_line_is_ignored_and_the_rest_replayed(world: Callable[..., World]) -> None:
    w = world()
    w.run(wait=False)
    journal = w.ledger.with_name(w.ledger.name + ".journal")
    record = w.records()[0]
    journal.write_text(
        json.dumps({**record, "status": "processing"}) + "\n" + '{"out_task_id": "x', encoding="utf-8"
    )
    ledger = Ledger.open(w.ledger, write=True)
    try:
        assert ledger.get(record["out_task_id"])["status"] == "processing"  # type: ignore[index]
        assert "x" not in ledger.records
    finally:
        ledger.close()
    assert not journal.exists()


def test_delivered_pixels_that_differ_from_the_plan_are_kept_with_a_warning(
    world: Callable[..., World],
) -> None:
    w = world()
    w.run(wait=False)
    for task in w.sandbox.tasks.values():
        task.pixels = (1024, 1024)  # the service delivers something other than the table says
    code, summary = w.run()
    assert code == 0 and len(summary["warnings"]) == 6
    assert "delivered 1024x1024, the plan said" in summary["warnings"][0]
    assert all(r["outputs"][0]["width"] == 1024 for r in w.records())


def test_a_refused_key_stops_the_run_after_one_request(
    world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world()
    monkeypatch.setenv("AIREITER_API_KEY", "sk-wrong")
    with pytest.raises(Exception) as e:
        w.run()
    assert getattr(e.value, "exit_code", None) == 3
    assert "refused (HTTP 401: invalid or missing API key)" in str(e.value)
    assert sum(w.sandbox.requests.values()) == 1  # the first submit goes alone
    assert len(w.records()) == 1 and w.records()[0]["status"] == "submitting"


def test_status_refresh_against_a_dead_service_says_so(
    world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    w = world()
    w.run(wait=False)
    w.sandbox.faults.error_share = 1.0  # every answer a 5xx: the service gives nothing usable
    conn = Connection(base_url=IN_PROCESS_URL, sandbox=False, retry=FAST)
    capsys.readouterr()
    code = status_command(
        [str(w.manifest)], conn, w.ledger, True, w.out, "text", transport=SandboxTransport(w.sandbox)
    )
    err = capsys.readouterr().err
    assert code == 5 and "6 tasks could not be refreshed" in err
    assert all(r["status"] == "pending" for r in w.records())  # nothing recorded was lost


def test_status_counts_the_credits_of_tasks_still_running(world: Callable[..., World]) -> None:
    w = world(faults=Faults(fail_share=1.0, end_status="processing"))  # they never finish
    w.run(wait=False)  # paid, still running: no credits_used yet
    code, report = w.status(refresh=True)  # the service says credits_used 0 while they run
    assert code == 1  # not done: nothing downloaded yet
    row = report["manifests"][0]
    assert row["running"] == 6 and row["credits_used"] == 0 and row["credits_estimated"] == 600
    text = run_cli("status", "--ledger", str(w.ledger), str(w.manifest))
    header, line = text.stdout.splitlines()[:2]
    assert line.split()[header.split().index("CREDITS") - 1] == "~600"  # NOT SUBMITTED is two words


def test_tasks_running_without_a_usable_answer_are_not_called_unconfirmed(
    world: Callable[..., World],
) -> None:
    w = world(faults=Faults(wrong_task_share=1.0))  # every query answers about another task
    opts = RunOptions(out_dir=w.out, poll_interval=0.01, compact_every=0.05)
    conn = Connection(base_url=IN_PROCESS_URL, sandbox=False, retry=FAST)
    w.capsys.readouterr()
    code = run_command([str(w.manifest)], conn, w.ledger, opts, "text", transport=SandboxTransport(w.sandbox))
    err = w.capsys.readouterr().err
    assert code == 5 and "6 running, 0 unconfirmed" in err
    assert "could not be confirmed" not in err  # they were: the service acknowledged each submit
    assert "6 tasks got no usable answer from the service" in err


def refusing_connections(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("All connection attempts failed", request=request)


@pytest.mark.parametrize("mode", ["in-process", "loopback"])
def test_a_submit_that_never_left_the_machine_does_not_bind_the_ledger(
    world: Callable[..., World], mode: str
) -> None:
    w = world()
    opts = RunOptions(out_dir=w.out, poll_interval=0.01)
    typo = Connection(base_url="http://127.0.0.1:1", sandbox=False, retry=FAST)
    transport = httpx.MockTransport(refusing_connections) if mode == "in-process" else None
    with pytest.raises(ImgbatchError) as e:
        run_command([str(w.manifest)], typo, w.ledger, opts, "json", transport=transport)
    assert e.value.exit_code == 5 and "cannot connect to 127.0.0.1:1" in str(e.value)
    assert not any(r.get("endpoint") for r in (w.records() if w.ledger.exists() else []))
    with contextlib.ExitStack() as stack:  # the corrected base URL
        url = stack.enter_context(loopback(w.sandbox)) if mode == "loopback" else None
        code, summary = w.run(url)
    assert code == 0 and summary["completed"] == 6 and summary["submitted"] == 6
    assert w.sandbox.submitted_twice() == []


@pytest.mark.parametrize("mode", ["in-process", "loopback"])
def test_a_404_from_the_submit_route_itself_is_a_wrong_base_url(
    world: Callable[..., World], mode: str
) -> None:
    # The service answers an API-style 404 "no route" for a path under a wrong prefix.
    w = world()
    opts = RunOptions(out_dir=w.out, poll_interval=0.01)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(loopback(w.sandbox)) if mode == "loopback" else IN_PROCESS_URL
        conn = Connection(base_url=url + "/v1", sandbox=False, retry=FAST)
        transport = SandboxTransport(w.sandbox) if mode == "in-process" else None
        with pytest.raises(ImgbatchError) as e:
            run_command([str(w.manifest)], conn, w.ledger, opts, "json", transport=transport)
    assert e.value.exit_code == 3 and "does not serve the aireiter API at this base URL" in str(e.value)
    assert "--base-url" in (e.value.hint or "")
    assert (
        w.sandbox.requests["/v1/api/openapi/submit"] == 1 and w.sandbox.requests["/v1/api/openapi/query"] == 0
    )
    assert not any(r.get("endpoint") for r in (w.records() if w.ledger.exists() else []))
