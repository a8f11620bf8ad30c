"""`run --format json` always prints one JSON document on stdout, refused or not: CI that
parses stdout never gets an empty one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli
from tests.test_run import MANIFEST

KEY = "sk-test-secret-77"


def run_json(tmp_path: Path, *extra: str, key: str = KEY, manifest: str = MANIFEST) -> tuple[int, Any, str]:
    (tmp_path / "m.yaml").write_text(manifest, encoding="utf-8")
    result = run_cli(
        "run", "--sandbox", "--sandbox-task-seconds", "0", "--poll-interval", "0",
        "--ledger", str(tmp_path / "l.jsonl"), "--out", str(tmp_path / "img"),
        "--format", "json", *extra, str(tmp_path / "m.yaml"),
        env={"AIREITER_API_KEY": key},
    )  # fmt: skip
    return result.exit_code, json.loads(result.stdout), result.stderr


@pytest.mark.parametrize(
    ("extra", "code", "says"),
    [
        (["--max-credits", "100"], 4, "over --max-credits 100; nothing was sent"),
        (["--max-tasks", "1"], 4, "over --max-tasks 1; nothing was sent"),
    ],
)
def test_a_run_refused_before_sending_prints_a_json_document_saying_why(
    tmp_path: Path, extra: list[str], code: int, says: str
) -> None:
    exit_code, doc, err = run_json(tmp_path, *extra)
    assert exit_code == code
    assert set(doc) == {"error", "requests", "ledger", "images"}
    assert doc["error"]["exit_code"] == code and says in doc["error"]["message"]
    assert doc["error"]["hint"].startswith("raise the limit")
    assert doc["requests"] == 0 and doc["ledger"] == str(tmp_path / "l.jsonl")
    # the one line on stderr is still there, saying the same
    [line] = [x for x in err.splitlines() if x.startswith("imgbatch: error:")]
    assert says in line
    assert not (tmp_path / "img").exists()


def test_other_early_refusals_print_the_same_shape(tmp_path: Path) -> None:
    invalid = MANIFEST.replace("version: 1", "version: 2")
    # an invalid manifest (exit 2), a key pasted with its scheme (exit 3, real service only),
    # a ledger that belongs to another service (exit 4)
    for folder in ("a", "b", "c"):
        (tmp_path / folder).mkdir()
    code_a, doc_a, _ = run_json(tmp_path / "a", manifest=invalid)
    assert code_a == 2 and "manifest is invalid" in doc_a["error"]["message"]
    (tmp_path / "b" / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    real = run_cli(
        "run", "--base-url", "http://127.0.0.1:9", "--ledger", str(tmp_path / "b" / "l.jsonl"),
        "--format", "json", str(tmp_path / "b" / "m.yaml"), env={"AIREITER_API_KEY": "Bearer " + KEY},
    )  # fmt: skip
    doc_b = json.loads(real.stdout)
    assert real.exit_code == 3 and "Authorization scheme" in doc_b["error"]["message"]
    assert KEY not in real.stdout
    (tmp_path / "c" / "l.jsonl").write_text(
        json.dumps({"out_task_id": "x.y.0", "status": "completed", "endpoint": "https://aireiter.com:443"})
        + "\n",
        encoding="utf-8",
    )
    code_c, doc_c, _ = run_json(tmp_path / "c")
    assert code_c == 4 and "belongs to https://aireiter.com:443" in doc_c["error"]["message"]
    for doc, code in ((doc_a, 2), (doc_b, 3), (doc_c, 4)):
        assert set(doc) == {"error", "requests", "ledger", "images"}
        assert set(doc["error"]) == {"message", "hint", "exit_code"} and doc["error"]["exit_code"] == code
        assert doc["requests"] == 0


def test_a_run_that_went_ahead_says_error_null(tmp_path: Path) -> None:
    code, doc, _ = run_json(tmp_path)
    assert code == 0 and doc["error"] is None and doc["completed"] == doc["planned"] == 6
