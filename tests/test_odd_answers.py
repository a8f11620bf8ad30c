"""Whatever a service answers, what imgbatch records must be a ledger the next command reads:
an answer field of the wrong type is refused or left out where it comes in, never written for
the next run to refuse (then every command stops at that line until it is edited by hand)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.commands.connection import Connection
from runner.commands.run import run as run_command
from runner.commands.status import status as status_command
from runner.estimate import number
from runner.ledger import Ledger
from runner.records import merge_answer
from runner.run import RunOptions
from runner.sandbox import Sandbox
from runner.sandbox.transport import IN_PROCESS_URL, SandboxTransport
from runner.sandbox.wire import QUERY_PATH, SUBMIT_PATH
from tests.test_run import FAST

KEY = "sk-test-odd-answers-31"
MANIFEST = """\
version: 1
name: odd
sizes: ['1:1@1K']
prompts:
  - {id: a, prompt: a mug}
  - {id: b, prompt: a pot}
"""


class Tampering(SandboxTransport):
    """The sandbox, with each answer to a query of a completed task (or, with `submits`, each
    accepted submit) rewritten by `tamper`, which returns the body to send."""

    def __init__(self, sandbox: Sandbox, tamper: Callable[[dict[str, Any]], str], submits: bool) -> None:
        super().__init__(sandbox)
        self.tamper = tamper
        self.path = SUBMIT_PATH if submits else QUERY_PATH

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path != self.path or response.status_code != 200:
            return response
        envelope = json.loads(response.content)
        if self.path == QUERY_PATH and (envelope.get("data") or {}).get("status") != "completed":
            return response
        return httpx.Response(
            200, headers={"content-type": "application/json"}, content=self.tamper(envelope)
        )


def _with_output_url(url: Any) -> Callable[[dict[str, Any]], str]:
    def tamper(envelope: dict[str, Any]) -> str:
        envelope["data"]["output"] = [{**envelope["data"]["output"][0], "url": url}]
        return json.dumps(envelope)

    return tamper


def _with_huge_number(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope).replace('"credits_used": 100', '"credits_used": ' + "7" * 5000)


def _commands(tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("AIREITER_API_KEY", KEY)
    manifest, ledger = tmp / "m.yaml", tmp / "l.jsonl"
    manifest.write_text(MANIFEST, encoding="utf-8")
    sandbox = Sandbox(token=KEY, task_seconds=0.02)
    conn = Connection(base_url=IN_PROCESS_URL, sandbox=False, retry=FAST)

    def run(
        tamper: Callable[[dict[str, Any]], str] | None, submits: bool = False, **options: Any
    ) -> tuple[int, dict[str, Any]]:
        transport = SandboxTransport(sandbox) if tamper is None else Tampering(sandbox, tamper, submits)
        opts = RunOptions(
            out_dir=tmp / "img", poll_interval=0.01, compact_every=0.05, lost_after=0.3, **options
        )
        capsys.readouterr()
        code = run_command([str(manifest)], conn, ledger, opts, "json", transport=transport)
        return code, json.loads(capsys.readouterr().out)

    def status() -> int:
        capsys.readouterr()
        code = status_command(
            [str(manifest)], conn, ledger, False, tmp / "img", "json", transport=SandboxTransport(sandbox)
        )
        capsys.readouterr()
        return code

    return run, status, sandbox


@pytest.mark.parametrize("url", [5, True, ["https://x/a.png"], {"href": "https://x/a.png"}], ids=repr)
def test_an_output_url_that_is_not_text_is_never_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: Any
) -> None:
    run, status, sandbox = _commands(tmp_path, monkeypatch, capsys)
    code, summary = run(_with_output_url(url))
    assert code == 1 and summary["error"] is None  # the image refused, the run not crashed
    assert "no usable image URL" in json.dumps(summary["todo"])
    assert status() == 1  # the ledger reads: planned, not done
    code, summary = run(None)  # the service answers properly again: the paid image is fetched
    assert code == 0 and summary["completed"] == 2 and summary["submitted"] == 0
    assert sandbox.submitted_twice() == []


def test_an_answer_json_cannot_read_is_an_unusable_answer_not_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run, status, sandbox = _commands(tmp_path, monkeypatch, capsys)
    code, summary = run(_with_huge_number)  # a 5,000-digit number: valid JSON, not for Python's json
    assert code == 5 and summary["error"] is None, summary
    assert status() == 1
    code, summary = run(None)
    assert code == 0 and summary["completed"] == 2 and summary["submitted"] == 0
    assert sandbox.submitted_twice() == []


def test_a_price_past_any_float_stops_spending_instead_of_crashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # estimated_credits of 400 digits: valid JSON Python reads, but float() of it overflows.
    # It is more than any cap, so the cap holds: the first submit goes alone, nothing follows.
    def huge_estimate(envelope: dict[str, Any]) -> str:
        envelope["data"]["estimated_credits"] = 10**400
        return json.dumps(envelope)

    run, status, sandbox = _commands(tmp_path, monkeypatch, capsys)
    code, summary = run(huge_estimate, submits=True, max_credits=1000)
    assert code == 4 and summary["error"] is None, summary
    assert summary["submitted"] == 1 and sandbox.stats()["tasks"] == 1
    assert status() == 1  # the ledger reads
    assert sandbox.submitted_twice() == []


_junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(10**400), 10**400)
    | st.floats()
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
_answer = st.fixed_dictionaries(
    {"status": st.sampled_from(["completed", "failed", "pending", "error"]) | _junk},
    optional={
        **{k: _junk for k in ("task_id", "created_at", "completed_at", "estimated_credits", "credits_used")},
        **{k: _junk for k in ("error", "message")},
        "output": st.lists(
            st.fixed_dictionaries(
                {}, optional={"url": _junk | st.just("https://x.org/a.png"), "width": _junk}
            )
            | _junk,
            max_size=3,
        )
        | _junk,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_answer)
def test_whatever_an_answer_holds_the_record_written_is_read_back(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    old = {"url": "https://x.org/old.png", "path": None, "sha256": None, "width": None, "height": None}
    record = {
        "out_task_id": "a.p.x",
        "submit_id": "a.p.x",
        "status": "pending",
        "params": {},
        "outputs": [old],
    }
    merged = merge_answer(record, data)
    number(merged.get("estimated_credits"))  # a price is read from it without an error
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    ledger = Ledger.open(path, write=True)
    ledger.put(merged)
    ledger.close()
    assert Ledger.open(path, write=False).get("a.p.x") is not None
