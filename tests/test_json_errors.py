"""Every command that takes `--format json` prints exactly one JSON document on stdout, also
when it stops with an error: `{"error": {"message", "hint", "exit_code"}}`, with the same exit
code and the same line on stderr as its text output. CI that parses stdout never gets nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CliResult, run_cli

MANIFEST = "version: 1\nname: jdoc\nsizes: ['1:1@1K']\nprompts:\n  - {id: a, prompt: a mug}\n"
BAD_LINE = '{"out_task_id": broken\n'
OTHER_SERVICE = json.dumps(
    {"out_task_id": "x.y.0", "status": "pending", "endpoint": "https://aireiter.com:443"}
)
KEY_ENV = {"AIREITER_API_KEY": "sk-test-json-errors-5"}

# (command line with {m}: the manifest, {l}: the ledger, {x}: a missing file; the ledger's
# text; the text format; exit code; what the message says)
CASES: list[tuple[str, str, str, int, str]] = [
    ("status --ledger {l} {m}", BAD_LINE, "text", 2, ":1:17: not a ledger record"),
    ("status --ledger {l} {x}", "", "text", 2, "missing.yaml: no such file or folder"),
    (
        "status --refresh --base-url http://127.0.0.1:9 --ledger {l} {m}",
        OTHER_SERVICE,
        "text",
        4,
        "belongs to https://aireiter.com:443",
    ),
    ("validate {x}", "", "text", 2, "missing.yaml: no such file or folder"),
    ("plan {x}", "", "table", 2, "missing.yaml: no such file or folder"),
    ("plan --ledger {l} {m}", BAD_LINE, "table", 2, ":1:17: not a ledger record"),
    ("diff --ledger {l} {m} {m}", BAD_LINE, "text", 2, ":1:17: not a ledger record"),
    ("diff --since no-such-ref {m}", "", "text", 2, "--since no-such-ref: no such commit"),
]


def _invoke(tmp: Path, line: str, ledger_text: str, *fmt: str) -> CliResult:
    manifest, ledger = tmp / "m.yaml", tmp / "l.jsonl"
    manifest.write_text(MANIFEST, encoding="utf-8")
    if ledger_text:
        ledger.write_text(ledger_text, encoding="utf-8")
    args = line.format(m=manifest, l=ledger, x=tmp / "missing.yaml").split()
    return run_cli(*args, *fmt, env=KEY_ENV)


@pytest.mark.parametrize(
    ("line", "ledger_text", "text_fmt", "code", "says"), CASES, ids=[c[0] for c in CASES]
)
def test_an_error_under_format_json_is_one_document_with_the_text_outputs_exit_code_and_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    line: str,
    ledger_text: str,
    text_fmt: str,
    code: int,
    says: str,
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # diff --since: a repository
    monkeypatch.chdir(tmp_path)
    text = _invoke(tmp_path, line, ledger_text, "--format", text_fmt)
    assert text.exit_code == code and says in text.stderr, text.stderr
    assert text.stdout == ""
    result = _invoke(tmp_path, line, ledger_text, "--format", "json")
    assert result.exit_code == code, result.stderr
    doc = json.loads(result.stdout)  # exactly one document: a second one would not parse
    assert doc == {
        "error": {"message": doc["error"]["message"], "hint": doc["error"]["hint"], "exit_code": code}
    }
    assert says in doc["error"]["message"]
    # the one line on stderr is as with the text output, and says the same as the document
    [err] = [x for x in result.stderr.splitlines() if x.startswith("imgbatch: error:")]
    assert err in text.stderr.splitlines()
    assert err == f"imgbatch: error: {doc['error']['message']}; {doc['error']['hint']}"


def test_an_invalid_manifest_under_format_json_is_a_document_too(tmp_path: Path) -> None:
    # The diagnostics stay on stderr; stdout says why the command stopped.
    (tmp_path / "m.yaml").write_text(MANIFEST.replace("version: 1", "version: 2"), encoding="utf-8")
    for args in (["plan"], ["status", "--ledger", str(tmp_path / "l.jsonl")]):
        result = run_cli(*args, "--format", "json", str(tmp_path / "m.yaml"))
        assert result.exit_code == 2
        assert "1 manifest is invalid" in json.loads(result.stdout)["error"]["message"]
        assert "m.yaml:1:10: error:" in result.stderr


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("runner.commands.status.status", ["status", "--ledger", "{l}", "{m}"]),
        ("runner.commands.validate.validate", ["validate", "{m}"]),
        ("runner.commands.plan.plan", ["plan", "{m}"]),
        ("runner.commands.diff.diff", ["diff", "{m}", "{m}"]),
    ],
)
def test_a_bug_under_format_json_is_still_one_document_with_exit_70(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, args: list[str]
) -> None:
    def boom(*_: Any, **__: Any) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(module, boom)
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    filled = [a.format(m=tmp_path / "m.yaml", l=tmp_path / "l.jsonl") for a in args]
    result = run_cli(*filled, "--format", "json")
    assert result.exit_code == 70
    assert json.loads(result.stdout)["error"] == {
        "message": "internal error: RuntimeError: boom",
        "hint": "please report it; IMGBATCH_DEBUG=1 shows the traceback",
        "exit_code": 70,
    }
    assert "imgbatch: internal error: RuntimeError: boom" in result.stderr


def test_a_bug_in_a_run_keeps_the_runs_document_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("runner.commands.run.drive", boom)
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    result = run_cli(
        "run", "--sandbox", "--ledger", str(tmp_path / "l.jsonl"), "--out", str(tmp_path / "img"),
        "--format", "json", str(tmp_path / "m.yaml"),
    )  # fmt: skip
    assert result.exit_code == 70
    doc = json.loads(result.stdout)
    assert set(doc) == {"error", "requests", "ledger", "images"} and doc["error"]["exit_code"] == 70


def test_every_json_document_that_went_well_says_error_null(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    m, ledger = str(tmp_path / "m.yaml"), str(tmp_path / "l.jsonl")
    lines = [
        ["validate", m],
        ["plan", m],
        ["plan", "--ledger", ledger, m],
        ["diff", m, m, "--ledger", ledger],
        ["status", "--ledger", ledger, m],
    ]
    for args in lines:
        result = run_cli(*args, "--format", "json")
        assert result.exit_code in (0, 1), (args, result.stderr)
        assert json.loads(result.stdout)["error"] is None, args


def test_jsonl_and_click_usage_errors_print_no_document(tmp_path: Path) -> None:
    # A task stream gets no line that is not a task; click's own usage errors come before any
    # format is known (documented).
    result = run_cli("plan", "--format", "jsonl", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and result.stdout == ""
    result = run_cli("status", "--format", "json", "--no-such-option", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and result.stdout == ""
