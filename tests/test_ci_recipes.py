"""The CI recipes: the GitHub workflow against GitHub's schema (check-jsonschema's vendored
copy, offline), its imgbatch command lines against the real CLI, the pre-commit hook, and the
main branch's flow (sharded runs, merged ledgers) played locally."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import ROOT, run_cli
from tests.project_util import SHOTS, Project

WORKFLOW = ROOT / "specs_examples" / "ci" / "github-actions.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"


def check_workflow(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )


def test_the_workflow_passes_the_github_workflow_schema(tmp_path: Path) -> None:
    ok = check_workflow(WORKFLOW)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the check has teeth: a misspelt key fails it
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:", 1))
    assert check_workflow(broken).returncode == 1


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def imgbatch_calls() -> list[list[str]]:
    calls = []
    for job in workflow()["jobs"].values():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            for line in script.splitlines():
                for m in re.finditer(r"imgbatch ([a-z-]+)([^|>;&\n]*)", line):
                    if not line.lstrip().startswith("git "):  # the merge driver's config line
                        calls.append([m[1], *re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", m[2])])
    return calls


def test_every_imgbatch_command_line_in_the_workflow_exists() -> None:
    calls = imgbatch_calls()
    assert {c[0] for c in calls} == {"validate", "diff", "plan", "run", "merge-ledgers"}
    for command, *options in calls:
        help_text = run_cli(command, "--help").stdout
        for option in options:
            assert re.search(rf"(?<![\w-]){re.escape(option)}\b", help_text), (command, option)


def test_the_shard_matrix_matches_the_shard_count() -> None:
    wf = workflow()
    assert wf["jobs"]["regenerate"]["strategy"]["matrix"]["shard"] == list(
        range(1, int(wf["env"]["SHARDS"]) + 1)
    )
    assert wf["jobs"]["regenerate"]["strategy"]["fail-fast"] is False


def test_the_pre_commit_hook_validates_manifests(tmp_path: Path) -> None:
    [hook] = yaml.safe_load(HOOKS.read_text())
    assert (hook["id"], hook["language"]) == ("validate", "python")
    files = re.compile(hook["files"])
    assert files.search("manifests/shots.yaml") and files.search("site/manifests/a/b.yml")
    assert not files.search(".github/workflows/ci.yml") and not files.search(".pre-commit-config.yaml")
    program, *args = shlex.split(hook["entry"])
    assert program == "imgbatch"
    good = tmp_path / "good.yaml"
    good.write_text(SHOTS)
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHOTS.replace("version: 1", "version: 2"))
    assert run_cli(*args, str(good)).exit_code == 0  # pre-commit appends the staged file names
    result = run_cli(*args, str(good), str(bad))
    assert result.exit_code == 1 and "bad.yaml:1:10: error" in result.stdout


def test_the_main_flow_sharded_runs_merge_into_one_complete_ledger(tmp_path: Path) -> None:
    """What the regenerate and merge jobs do, with three shards on one machine."""
    main = Project(tmp_path / "main")
    main.write(SHOTS)
    assert main.run().exit_code == 0  # the ledger as committed on main
    main.write(SHOTS.replace("16:9@1K", "16:9@1K', '4:3@1K', '3:4@1K', '2:3@1K"), "shots.yaml")
    main.write(SHOTS.replace("name: shots", "name: more"), "more.yaml")
    base = main.ledger.read_bytes()
    shard_ledgers = []
    for i in (1, 2, 3):
        shard = Project(tmp_path / f"shard{i}")
        shutil.copytree(main.manifests, shard.manifests, dirs_exist_ok=True)
        shutil.copytree(main.out, shard.out)
        shard.ledger.write_bytes(base)  # every shard starts from the committed ledger
        if shard.plan("--shard", f"{i}/3", "--exit-code").exit_code == 1:
            assert shard.run("--shard", f"{i}/3").exit_code == 0
        shard_ledgers.append(str(shard.ledger))
        shutil.copytree(shard.out, main.out, dirs_exist_ok=True)  # the artifacts' new images
    code = run_cli(
        "merge-ledgers", "-o", str(main.ledger), "--base", str(main.ledger), *shard_ledgers
    ).exit_code
    assert code == 0
    s = main.plan("--format", "json").json()["summary"]
    assert (s["done"], s["create"], s["download"], s["orphaned"]) == (14, 0, 0, 0)
    assert main.plan("--exit-code").exit_code == 0

