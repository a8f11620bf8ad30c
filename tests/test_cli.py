"""validate, plan and schema end to end through the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, ROOT, run_cli

GOOD = "version: 1\nname: t\nsizes: ['16:9@2K', 2048x1000]\nprompts: [{id: a, prompt: p}]\n"
BAD = "version: 1\nname: t\nsizes: ['16:10']\nprompts: [{id: a, prompt: 5}]\n"


def test_validate_examples_folder() -> None:
    result = run_cli("validate", str(EXAMPLES))
    assert result.exit_code == 0, result.stdout
    assert "3 files checked: 3 valid, 0 invalid, 0 errors" in result.stdout


def test_validate_exit_codes(write: Callable[..., Path]) -> None:
    good, bad = write(GOOD, "good.yaml"), write(BAD, "bad.yaml")
    assert run_cli("validate", str(good)).exit_code == 0
    assert run_cli("validate", "--strict", str(good)).exit_code == 1  # a floor warning
    result = run_cli("validate", str(good), str(bad))
    assert result.exit_code == 1
    assert f"{bad}:3:9: error: $.sizes[0]:" in result.stdout
    assert f"{bad}:4:27: error: $.prompts[0].prompt: expected a string" in result.stdout
    assert run_cli("validate").exit_code == 2
    assert run_cli("validate", "--format", "xml", str(good)).exit_code == 2
    missing = run_cli("validate", str(good.parent / "nope.yaml"))
    assert missing.exit_code == 2
    assert "nope.yaml: no such file or folder" in missing.stderr


def test_validate_json_and_github_formats(write: Callable[..., Path]) -> None:
    bad = write(BAD)
    report = run_cli("validate", "--format", "json", str(bad))
    assert report.exit_code == 1
    data = report.json()
    assert data["valid"] is False
    [f] = data["files"]
    assert {(d["line"], d["col"], d["path"]) for d in f["diagnostics"]} == {
        (3, 9, "$.sizes[0]"),
        (4, 27, "$.prompts[0].prompt"),
    }
    gh = run_cli("validate", "--format", "github", str(bad))
    assert gh.stdout.splitlines()[0].startswith(f"::error file={bad},line=3,col=9::")


def test_plan_jsonl_has_the_contract_fields_sorted_by_id() -> None:
    result = run_cli("plan", "--format", "jsonl", str(EXAMPLES))
    assert result.exit_code == 0, result.stderr
    rows = result.jsonl()
    assert [r["out_task_id"] for r in rows] == sorted(r["out_task_id"] for r in rows)
    cat = next(r for r in rows if r["manifest"] == "window-cat")
    assert cat["params"] == {
        "prompt": "한 마리의 주황색 고양이가 창턱에 앉아 석양을 바라보는 수채화 스타일",
        "aspect_ratio": "16:9",
        "resolution": "2K",
    }
    assert cat["pixels"] == [2048, 1152]
    assert cat["prompt_id"] == "orange-cat"
    # the custom-sizes example has one below-floor size: warned on stderr before any spend
    assert "effective floor" in result.stderr


def test_plan_table_and_json(write: Callable[..., Path]) -> None:
    table = run_cli("plan", str(EXAMPLES / "product-shots.yaml"))
    assert table.exit_code == 0
    assert table.stdout.splitlines()[-1].startswith("product-shots (")
    assert "14 tasks" in table.stdout
    full = run_cli("plan", "--format", "json", str(EXAMPLES)).json()
    assert sum(m["tasks"] for m in full["manifests"]) == len(full["tasks"])


def test_plan_of_an_invalid_manifest_is_invalid_input(write: Callable[..., Path]) -> None:
    result = run_cli("plan", str(write(BAD)))
    assert result.exit_code == 2
    assert "1 manifest is invalid" in result.stderr
    assert ":3:9:" in result.stderr


def test_colliding_manifest_names(write: Callable[..., Path]) -> None:
    a, b = write(GOOD, "a.yaml"), write(GOOD, "b.yaml")
    result = run_cli("validate", str(a), str(b))
    assert result.exit_code == 1
    assert f"manifest name 't' is already used by {a}" in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["validate", "--help"], ["--version"]])
def test_help_and_version(args: list[str]) -> None:
    assert run_cli(*args).exit_code == 0


def test_python_dash_m_runner_is_the_same_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "validate", str(EXAMPLES)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0
    assert "3 valid" in proc.stdout
