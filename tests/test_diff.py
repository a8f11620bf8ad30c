"""imgbatch diff: OLD NEW and --since REF through git, in text, markdown and JSON."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.project_util import SHOTS

# The same manifest as SHOTS: block style, keys reordered, comments, another file name.
SHOTS_REFORMATTED = """\
# product shots
name: shots
version: 1
prompts:
  - prompt: "a mug"   # quoted now
    id: mug
  - id: pot
    prompt: >-
      a teapot
sizes:
  - aspect_ratio: '1:1'
    resolution: 1K
  - 16:9@1K
"""


def write(folder: Path, text: str, name: str = "shots.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def diff(*args: str) -> tuple[int, str, str]:
    r = run_cli("diff", *args)
    return r.exit_code, r.stdout, r.stderr


def test_a_reformat_only_change_is_no_change(tmp_path: Path) -> None:
    old = write(tmp_path / "old", SHOTS)
    new = write(tmp_path / "new", SHOTS_REFORMATTED, "renamed.yml")
    code, out, _ = diff(str(old), str(new), "--exit-code")
    assert code == 0 and "No changes: the same 4 tasks." in out
    code, out, _ = diff(str(old), str(new), "--format", "json")
    d = json.loads(out)
    assert (d["added"], d["removed"], d["changed"], d["unchanged"]) == ([], [], [], 4)
    assert d["spend"] == {"tasks": 0, "credits": 0.0, "pixels": 0}
    _, out, _ = diff(str(old), str(new), "--format", "markdown")
    assert "No changes: the same 4 tasks, nothing to spend." in out


def test_a_changed_prompt_pairs_old_and_new_ids(tmp_path: Path) -> None:
    old = write(tmp_path / "old", SHOTS)
    new = write(tmp_path / "new", SHOTS.replace("a teapot", "a blue teapot"))
    code, out, _ = diff(str(old), str(new), "--format", "json", "--exit-code")
    assert code == 1
    d = json.loads(out)
    assert d["unchanged"] == 2 and len(d["added"]) == len(d["removed"]) == 2
    [change] = d["changed"]
    assert (change["prompt_id"], change["old_text"], change["new_text"]) == (
        "pot",
        "a teapot",
        "a blue teapot",
    )
    pairs = {(t["old_size"], t["new_size"]): (t["old"], t["new"]) for t in change["tasks"]}
    assert set(pairs) == {("1:1@1K", "1:1@1K"), ("16:9@1K", "16:9@1K")}
    removed = {t["size"]: t["out_task_id"] for t in d["removed"]}
    added = {t["size"]: t["out_task_id"] for t in d["added"]}
    for size in removed:
        assert pairs[(size, size)] == (removed[size], added[size])
    assert d["spend"]["tasks"] == 2 and d["spend"]["credits"] == 200.0
    assert d["spend"]["pixels"] == sum(t["pixels"][0] * t["pixels"][1] for t in d["added"])
    _, text, _ = diff(str(old), str(new))
    assert "~ shots/pot: prompt text changed\n    - a teapot\n    + a blue teapot\n" in text
    assert f"    1:1@1K  {removed['1:1@1K']} -> {added['1:1@1K']}" in text
    assert text.rstrip().endswith(
        "1 changed prompt, 2 added, 2 removed, 2 unchanged tasks; a run would submit 2 tasks, "
        f"~200 credits, {d['spend']['pixels'] / 1e6:.1f} Mpx delivered."
    )


def test_markdown_is_a_pr_comment_with_credits_and_both_texts(tmp_path: Path) -> None:
    old = write(tmp_path / "old", SHOTS)
    new_text = SHOTS.replace("a teapot", "a teapot with ```fences``` inside").replace(
        "  - {id: mug, prompt: a mug}\n", "  - {id: cup, prompt: a cup}\n"
    )
    new = write(tmp_path / "new", new_text)
    code, md, _ = diff(str(old), str(new), "--format", "markdown")
    assert code == 0
    assert md.startswith("<!-- imgbatch-diff -->\n### imgbatch diff:")
    assert "| **A run would submit** | **4 tasks** |" in md
    assert "| **Estimated credits** | **~400** |" in md
    # the prompt's own backticks cannot close the block: the fence is longer
    assert "````diff\n- a teapot\n+ a teapot with ```fences``` inside\n````" in md
    assert "#### Added" in md and "| shots / cup | 1:1@1K |" in md
    assert "#### Removed" in md and "| shots / mug | 16:9@1K |" in md


def test_a_size_slot_change_pairs_by_position(tmp_path: Path) -> None:
    old = write(tmp_path / "old", SHOTS)
    new = write(tmp_path / "new", SHOTS.replace("16:9@1K", "4:3@2K"))
    _, out, _ = diff(str(old), str(new), "--format", "json")
    d = json.loads(out)
    assert len(d["changed"]) == 2 and d["unchanged"] == 2
    for change in d["changed"]:
        assert not change["text_changed"]
        assert [(t["old_size"], t["new_size"]) for t in change["tasks"]] == [("16:9@1K", "4:3@2K")]


def test_spend_leaves_out_tasks_the_ledger_holds_and_uses_its_price(tmp_path: Path) -> None:
    old = write(tmp_path / "old", SHOTS.replace("a teapot", "a blue teapot"))
    new = write(tmp_path / "new", SHOTS)  # back to the teapot, which the ledger still has
    _, out, _ = diff(str(old), str(new), "--format", "json")
    added = [t["out_task_id"] for t in json.loads(out)["added"]]
    ledger = tmp_path / "l.jsonl"
    record = {"out_task_id": added[0], "status": "completed", "estimated_credits": 300}
    ledger.write_text(json.dumps(record) + "\n", encoding="utf-8")
    _, out, _ = diff(str(old), str(new), "--format", "json", "--ledger", str(ledger))
    assert json.loads(out)["spend"]["tasks"] == 1 and json.loads(out)["spend"]["credits"] == 300.0


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(tmp_path / "manifests", SHOTS)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "shots")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_since_reads_the_old_side_from_git(repo: Path) -> None:
    write(repo / "manifests", SHOTS.replace("a mug", "a red mug"))
    write(repo / "manifests" / "more", SHOTS.replace("name: shots", "name: extra"), "extra.yaml")
    code, out, err = diff("--since", "HEAD", "manifests", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["old"] == "HEAD" and d["new"] == "working tree"
    assert [c["prompt_id"] for c in d["changed"]] == ["mug"]
    assert len(d["added"]) == 2 + 4 and len(d["removed"]) == 2 and d["unchanged"] == 2
    # nothing was checked out: the working tree is as it was
    assert "a red mug" in (repo / "manifests" / "shots.yaml").read_text()
    code, out, _ = diff("--since", "HEAD", "--exit-code")  # PATH defaults to the current folder
    assert code == 1 and "~ shots/mug: prompt text changed" in out


def test_since_other_yaml_in_the_folder_is_passed_over_as_in_a_folder_search(repo: Path) -> None:
    write(repo / "manifests" / "ci", "on: push\njobs: {}\n", "workflow.yml")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "ci")
    code, out, err = diff("--since", "HEAD", "manifests", "--exit-code")
    assert code == 0 and "No changes: the same 4 tasks." in out, err


def test_since_a_reformat_is_no_change(repo: Path) -> None:
    (repo / "manifests" / "shots.yaml").unlink()
    write(repo / "manifests", SHOTS_REFORMATTED, "moved.yml")
    code, out, _ = diff("--since", "HEAD", "manifests", "--exit-code")
    assert code == 0 and "No changes: the same 4 tasks." in out


def test_since_a_folder_new_at_that_ref_is_all_additions(repo: Path) -> None:
    write(repo / "new", SHOTS.replace("name: shots", "name: fresh"))
    code, out, _ = diff("--since", "HEAD", "new", "--format", "json")
    assert code == 0 and len(json.loads(out)["added"]) == 4 and json.loads(out)["removed"] == []


def test_since_an_unknown_ref_or_no_repository_is_one_clear_line(
    repo: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = diff("--since", "origin/nope", "manifests")
    assert code == 2 and "no such commit" in err and "git fetch" in err and "Traceback" not in err
    elsewhere = tmp_path_factory.mktemp("plain")
    write(elsewhere, SHOTS)
    monkeypatch.chdir(elsewhere)
    code, _, err = diff("--since", "HEAD", ".")
    assert code == 2 and "needs a git repository" in err


def test_diff_needs_old_and_new_or_since(tmp_path: Path) -> None:
    code, _, err = diff(str(write(tmp_path, SHOTS)))
    assert code == 2 and "give OLD and NEW" in err
