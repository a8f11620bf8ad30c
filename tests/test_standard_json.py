"""A price past a float (`1e400` in an answer) never reaches any JSON imgbatch writes as
`Infinity`, which is not JSON: strict parsers and jq refuse the whole document. The ledger
keeps the service's number exactly (as an integer), computed estimates past a float are null,
and spending still fails closed (runner/jsonnum.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.commands.connection import Connection
from runner.commands.run import run as run_command
from runner.errors import ImgbatchError
from runner.run import RunOptions
from runner.sandbox import Sandbox
from runner.sandbox.transport import IN_PROCESS_URL, SandboxTransport
from tests.helpers import run_cli
from tests.test_run import FAST

KEY = "sk-test-standard-json-8"
MANIFEST = "version: 1\nname: odd\nsizes: ['1:1@1K']\nprompts:\n  - {id: a, prompt: a mug}\n"
MORE = "  - {id: b, prompt: a pot}\n"
HUGE = 10**400  # what the service's 1e400 is


def strict(text: str) -> Any:
    """json.loads as a strict parser reads: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON: {text[:300]}")

    return json.loads(text, parse_constant=refuse)


class Rewriting(SandboxTransport):
    """The sandbox, each answer's body text rewritten by `rewrite`."""

    def __init__(self, sandbox: Sandbox, rewrite: Callable[[bytes], bytes]) -> None:
        super().__init__(sandbox)
        self.rewrite = rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if response.headers.get("content-type") != "application/json":
            return response  # an image
        return httpx.Response(
            response.status_code,
            headers={"content-type": "application/json"},
            content=self.rewrite(response.content),
        )


def priced(literal: bytes) -> Callable[[bytes], bytes]:
    def rewrite(body: bytes) -> bytes:
        return body.replace(b'"estimated_credits": 100', b'"estimated_credits": ' + literal).replace(
            b'"credits_used": 100', b'"credits_used": ' + literal
        )

    return rewrite


def _run(
    tmp: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    rewrite: Callable[[bytes], bytes],
    **options: Any,
) -> tuple[int, str, Sandbox]:
    monkeypatch.setenv("AIREITER_API_KEY", KEY)
    sandbox = Sandbox(token=KEY, task_seconds=0.02)
    conn = Connection(base_url=IN_PROCESS_URL, sandbox=False, retry=FAST)
    opts = RunOptions(out_dir=tmp / "img", poll_interval=0.01, compact_every=0.05, lost_after=0.3, **options)
    capsys.readouterr()
    try:
        code = run_command(
            [str(tmp / "m.yaml")], conn, tmp / "l.jsonl", opts, "json", transport=Rewriting(sandbox, rewrite)
        )
    except ImgbatchError as e:  # a refusal: the CLI's handler would exit with its code
        code = e.exit_code
    return code, capsys.readouterr().out, sandbox


def _documents(tmp: Path) -> dict[str, str]:
    m, ledger = str(tmp / "m.yaml"), str(tmp / "l.jsonl")
    out = {}
    for name, args in {
        "status": ["status", "--ledger", ledger, m],
        "plan": ["plan", "--ledger", ledger, m],
        "plan-jsonl": ["plan", "--ledger", ledger, m, "--format", "jsonl"],
        "diff": ["diff", "--ledger", ledger, str(tmp / "old.yaml"), m],
    }.items():
        result = run_cli(*args, *([] if "--format" in args else ["--format", "json"]))
        assert result.exit_code in (0, 1), (name, result.stderr)
        out[name] = result.stdout
    return out


def test_a_price_of_1e400_is_kept_exactly_and_every_document_is_standard_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    code, out, sandbox = _run(tmp_path, capsys, monkeypatch, priced(b"1e400"))
    assert code == 0
    summary = strict(out)
    # What the task used is the service's number, exactly; the estimate at it has no float.
    assert summary["credits_used"] == HUGE and summary["credits_estimated"] is None
    [line] = (tmp_path / "l.jsonl").read_text(encoding="utf-8").splitlines()
    record = strict(line)
    assert record["estimated_credits"] == record["credits_used"] == HUGE
    # A new prompt: the plan and the diff estimate it at the price past a float.
    (tmp_path / "old.yaml").write_text(MANIFEST, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(MANIFEST + MORE, encoding="utf-8")
    docs = _documents(tmp_path)
    assert strict(docs["status"])["manifests"][0]["credits_used"] == HUGE
    plan = strict(docs["plan"])
    assert plan["summary"]["create"] == 1 and plan["summary"]["credits"] is None
    assert sorted(strict(x)["action"] for x in docs["plan-jsonl"].splitlines()) == ["create", "done"]
    assert strict(docs["diff"])["spend"]["credits"] is None
    # Spending still fails closed: the new task costs more than any cap, nothing is sent.
    code, out, sandbox = _run(tmp_path, capsys, monkeypatch, priced(b"1e400"), max_credits=10**9)
    assert code == 4 and strict(out)["error"]["exit_code"] == 4
    assert sandbox.stats()["tasks"] == 0
    if shutil.which("jq"):  # what a user's pipeline reads the documents with
        for text in [*docs.values(), out, line]:
            subprocess.run(["jq", "-e", "."], input=text, text=True, check=True, capture_output=True)


def test_a_first_price_of_1e400_stops_spending_after_one_submit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST + MORE, encoding="utf-8")
    code, out, sandbox = _run(tmp_path, capsys, monkeypatch, priced(b"1e400"), max_credits=1000)
    assert code == 4 and strict(out)["submitted"] == 1 and sandbox.stats()["tasks"] == 1
    assert sandbox.submitted_twice() == []
    for line in (tmp_path / "l.jsonl").read_text(encoding="utf-8").splitlines():
        strict(line)


@pytest.mark.parametrize("literal", [b"Infinity", b"NaN", b"-Infinity"])
def test_an_answer_holding_nan_or_infinity_is_no_usable_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, literal: bytes
) -> None:
    # Not JSON: never recorded, each such answer is asked again like a broken one (the task is
    # adopted from an answer without a price, the completed one is never usable: exit 5).
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    code, out, sandbox = _run(tmp_path, capsys, monkeypatch, priced(literal))
    assert code == 5 and strict(out)["unresolved"] == 1
    assert sandbox.submitted_twice() == []
    text = (tmp_path / "l.jsonl").read_text(encoding="utf-8")
    assert literal.decode() not in text
    record = strict(text.splitlines()[0])
    assert record["status"] != "completed" and record["estimated_credits"] is None


def test_a_ledger_an_older_imgbatch_wrote_with_infinity_reads_and_writes_standard_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An older imgbatch wrote a price past a float as Infinity. It stays a price past any cap,
    # and the documents and the rewritten record are standard JSON.
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    code, _, _ = _run(tmp_path, capsys, monkeypatch, priced(b"100"))
    assert code == 0
    ledger = tmp_path / "l.jsonl"
    line = ledger.read_text(encoding="utf-8")
    ledger.write_text(
        line.replace('"credits_used": 100', '"credits_used": Infinity').replace(
            '"estimated_credits": 100', '"estimated_credits": NaN'
        ),
        encoding="utf-8",
    )
    (tmp_path / "old.yaml").write_text(MANIFEST, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(MANIFEST + MORE, encoding="utf-8")
    docs = _documents(tmp_path)
    assert strict(docs["status"])["manifests"][0]["credits_used"] == 10**309
    assert strict(docs["plan"])["summary"]["credits"] is None  # the new task, at that price
    code, out, sandbox = _run(tmp_path, capsys, monkeypatch, priced(b"100"), max_credits=10**9)
    assert strict(out)["error"]["exit_code"] == 4
    assert code == 4 and sandbox.stats()["tasks"] == 0  # still more than any cap
    # The next rewrite writes the line anew as standard JSON, the record unchanged.
    from runner.ledger import Ledger

    Ledger.open(ledger, write=True).close()
    again = strict(ledger.read_text(encoding="utf-8"))
    assert again["credits_used"] == 10**309 and again["estimated_credits"] is None
    opened = Ledger.open(ledger, write=True)
    [record] = opened.records.values()
    opened.put({**record, "error": "touched"})
    opened.close()
    written = strict(ledger.read_text(encoding="utf-8"))
    assert written["credits_used"] == 10**309 and written["estimated_credits"] is None


def test_a_total_of_a_price_past_a_float_and_a_fractional_one_is_added_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10^400 + 100.5 has no float: the total is the integer, to the credit, in json and text.
    (tmp_path / "m.yaml").write_text(MANIFEST + MORE, encoding="utf-8")
    code, _, _ = _run(tmp_path, capsys, monkeypatch, priced(b"100.5"))
    assert code == 0
    ledger = tmp_path / "l.jsonl"
    first, second = ledger.read_text(encoding="utf-8").splitlines()
    ledger.write_text(first.replace('"credits_used": 100.5', '"credits_used": 1e400') + "\n" + second + "\n")
    m = str(tmp_path / "m.yaml")
    result = run_cli("status", "--ledger", str(ledger), m, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert strict(result.stdout)["manifests"][0]["credits_used"] == HUGE + 100
    text = run_cli("status", "--ledger", str(ledger), m)
    assert text.exit_code == 0 and f"{HUGE + 100:,}" in text.stdout, text.stderr
