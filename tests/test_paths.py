"""Which files are manifests: named files always; in folders, YAML files that look like one.
The same file reached twice is one manifest. Too many tasks is refused before any exists."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.discover import looks_like_manifest
from runner.manifest import check_files
from tests.helpers import run_cli

GOOD = "version: 1\nname: t\nsizes: ['16:9@2K']\nprompts: [{id: a, prompt: p}]\n"
COMPOSE = 'version: "3.8"\nname: app\nservices:\n  web: {image: nginx, ports: ["80:80"]}\n'


def test_the_same_file_twice_is_one_manifest(write: Callable[..., Path]) -> None:
    m = write(GOOD, "m.yaml")
    for args in ([str(m), str(m)], [str(m), str(m.parent)], [str(m.parent), f"{m.parent}/./m.yaml"]):
        result = run_cli("validate", *args)
        assert result.exit_code == 0, (args, result.stdout)
        assert "1 file checked: 1 valid" in result.stdout


def test_a_symlink_to_a_manifest_given_too_is_the_same_manifest(write: Callable[..., Path]) -> None:
    m = write(GOOD, "m.yaml")
    os.symlink(m, m.parent / "link.yaml")
    assert run_cli("validate", str(m), str(m.parent / "link.yaml")).exit_code == 0


def test_a_folder_with_other_yaml_validates(write: Callable[..., Path]) -> None:
    m = write(GOOD, "manifests/cats.yaml")
    write(COMPOSE, "docker-compose.yml")
    write("on: push\njobs: {}\n", "ci/workflow.yaml")
    write("name: x\nversion: 2\n", "other.yaml")
    write("{not yaml at all: [", ".hidden.yaml")
    write("this: [is not a manifest", ".imgbatch/manifest.schema.yaml")
    result = run_cli("validate", str(m.parent.parent))
    assert result.exit_code == 0, result.stdout
    assert "1 file checked: 1 valid" in result.stdout
    assert "skipped 3 YAML file(s) that are not manifests" in result.stderr
    assert "docker-compose.yml" in result.stderr
    as_json = run_cli("validate", "--format", "json", str(m.parent.parent)).json()
    assert as_json["valid"] is True and len(as_json["files"]) == 1
    assert sorted(Path(f).name for f in as_json["skipped"]) == [
        "docker-compose.yml",
        "other.yaml",
        "workflow.yaml",
    ]


def test_a_broken_manifest_in_a_folder_is_still_found(write: Callable[..., Path]) -> None:
    write("version: 1\nname: t\nprompts:\n\t- {id: a}\n", "a.yaml")
    write("prompts: [{id: a, prompt: p}]\nsizes: ['1:1']\nname: u\n", "b.yaml")  # no version
    result = run_cli("validate", str(write(GOOD, "c.yaml").parent))
    assert result.exit_code == 1
    assert "3 files checked: 1 valid, 2 invalid" in result.stdout
    assert "tabs cannot indent YAML" in result.stdout and "missing required key 'version'" in result.stdout


@pytest.mark.parametrize(
    ("text", "is_manifest"),
    [
        (GOOD, True),
        ("\ufeffprompts:\n  - x\n", True),
        ("'version': 1 # ours\n", True),
        ("name: x\r\nversion: 1\r\n", True),  # Windows line ends
        ('"prompts" : []\n', True),
        (COMPOSE, False),
        ("version: 1.0\nname: x\n", False),
        ("config:\n  prompts: [a]\n  version: 1\n", False),  # nested keys are not the manifest's
    ],
)
def test_what_looks_like_a_manifest(text: str, is_manifest: bool) -> None:
    assert looks_like_manifest(text.encode("utf-8")) is is_manifest


def test_a_named_file_is_always_read_as_a_manifest(write: Callable[..., Path]) -> None:
    compose = write(COMPOSE, "docker-compose.yml")
    result = run_cli("validate", str(compose))
    assert result.exit_code == 1
    assert "unknown key 'services'" in result.stdout
    both = run_cli("validate", str(compose.parent), str(compose))  # in a folder, and named
    assert "unknown key 'services'" in both.stdout and "skipped" not in both.stderr


def test_a_folder_without_manifests_says_so(write: Callable[..., Path]) -> None:
    result = run_cli("validate", str(write(COMPOSE, "docker-compose.yml").parent))
    assert result.exit_code == 2
    assert "no manifests" in result.stderr and "1 other YAML files skipped" in result.stderr


RATIOS = ["1:1", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "16:9", "9:16", "2:1", "1:2", "21:9", "9:21"]


def _task_bomb(prompts: int, repeat: int = 100) -> str:
    sizes = ", ".join(f"'{r}@{t}'" for r in RATIOS for t in ("1K", "2K", "4K"))
    lines = ["version: 1", "name: bomb", f"repeat: {repeat}", f"sizes: [{sizes}]", "prompts:"]
    lines += [f"  - {{id: p{i}, prompt: cat {i}}}" for i in range(prompts)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_a_task_bomb_is_refused_with_the_count(write: Callable[..., Path], command: str) -> None:
    path = write(_task_bomb(5000))  # 5,000 prompts x 39 sizes x repeat 100
    extra = ["--sandbox"] if command == "run" else []
    start = time.process_time()  # CPU, not wall time: other processes' load does not count
    result = run_cli(command, *extra, str(path))
    assert time.process_time() - start < 20  # seconds, not the minutes and gigabytes of a plan
    assert result.exit_code == (1 if command == "validate" else 2)
    out = result.stdout + result.stderr
    assert ":5:1: error: $.prompts: expands to 19,500,000 tasks, more than the limit of 1,000,000" in out
    assert "--max-plan-tasks" in out


def test_the_limit_counts_all_manifests_together_and_can_be_raised(write: Callable[..., Path]) -> None:
    a = write(_task_bomb(3, repeat=10), "a.yaml")  # 1,170 tasks
    b = write(_task_bomb(3, repeat=10).replace("name: bomb", "name: other"), "b.yaml")
    low = run_cli("plan", "--max-plan-tasks", "2000", str(a), str(b))
    assert low.exit_code == 2
    assert (
        "expands to 1,170 tasks (2,340 in all 2 manifests given), more than the limit of 2,000" in low.stderr
    )
    ok = run_cli("plan", "--format", "jsonl", "--max-plan-tasks", "2340", str(a), str(b))
    assert ok.exit_code == 0 and len(ok.jsonl()) == 2340
    assert run_cli("validate", "--max-plan-tasks", "0", str(a)).exit_code == 2  # usage error
    assert check_files([str(a)], max_plan_tasks=1169)[0].manifest is None


def test_a_symlink_loop_in_a_folder_is_one_clear_error_however_often_reached(
    write: Callable[..., Path],
) -> None:
    m = write(GOOD, "m.yaml")
    os.symlink("loop-b.yaml", m.parent / "loop-a.yaml")
    os.symlink("loop-a.yaml", m.parent / "loop-b.yaml")
    os.symlink("..", m.parent / "up")  # a folder loop: not followed
    result = run_cli("validate", str(m.parent), str(m.parent), f"{m.parent}/loop-a.yaml")
    assert result.exit_code == 1
    assert "3 files checked: 1 valid, 2 invalid" in result.stdout
    assert result.stdout.count("loop-a.yaml:1:1: error: cannot read: Too many levels of symbolic links") == 1


def test_a_named_pipe_in_a_folder_is_passed_over_not_waited_on(write: Callable[..., Path]) -> None:
    m = write(GOOD, "m.yaml")
    os.mkfifo(m.parent / "pipe.yaml")
    result = run_cli("validate", str(m.parent))
    assert result.exit_code == 0 and "1 file checked: 1 valid" in result.stdout
    assert "pipe.yaml" in result.stderr  # listed among the skipped files


def test_an_unreadable_subfolder_is_an_error_not_silently_passed_over(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    m = write(GOOD, "m.yaml")
    locked = write(GOOD, "locked/x.yaml").parent
    real_scandir = os.scandir

    def scandir(path: str) -> object:  # root reads any folder: deny this one as chmod 000 would
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = run_cli("validate", str(m.parent))
    assert result.exit_code == 2
    assert f"{locked}: cannot read the folder: Permission denied" in result.stderr
    assert "Traceback" not in result.stderr
