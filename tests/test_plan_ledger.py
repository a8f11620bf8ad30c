"""plan --ledger (Terraform-style), --exit-code, and --shard on plan and run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from runner.shard import parse_shard, shard_of
from tests.project_util import SHOTS, Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    p.write(SHOTS)
    return p


def summary(p: Project, *extra: str) -> dict[str, float]:
    result = p.plan("--format", "json", *extra)
    assert result.exit_code == 0, result.stderr
    s: dict[str, float] = result.json()["summary"]
    return s


def test_a_fresh_ledger_plans_every_task_as_create(project: Project) -> None:
    s = summary(project)
    assert s == {
        "create": 4,
        "download": 0,
        "running": 0,
        "failed": 0,
        "orphaned": 0,
        "done": 0,
        "credits": 400.0,
        "create_credits": 400.0,
        "submitting": 0,
        "submitting_credits": 0.0,
        "pixels": s["pixels"],
    }
    planned = project.cli("plan", str(project.manifests), "--format", "jsonl").jsonl()
    assert s["pixels"] == sum(t["pixels"][0] * t["pixels"][1] for t in planned) > 4_000_000
    assert all(isinstance(s[k], int) for k in ("create", "done", "running", "failed", "orphaned"))
    text = project.plan()
    assert text.exit_code == 0
    assert text.stdout.count("  + create  shots.") == 4
    assert "Plan: 4 to create (~400 credits at up to 100 a task)" in text.stdout
    assert project.plan("--exit-code").exit_code == 1


def test_after_a_run_everything_is_done_and_exit_code_is_0(project: Project) -> None:
    assert project.run().exit_code == 0
    assert summary(project)["done"] == 4
    result = project.plan("--exit-code")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.count("  = done  ") == 4
    assert "No changes." in result.stdout


def test_a_missing_or_altered_image_is_planned_as_a_download(project: Project) -> None:
    assert project.run().exit_code == 0
    first, second = sorted(project.records())[:2]
    kept = {i: project.image(i).read_bytes() for i in (first, second)}
    project.image(first).unlink()  # as in a fresh clone without images
    project.image(second).write_bytes(kept[second] + b"edited")
    s = summary(project)
    assert (s["download"], s["done"], s["create"], s["credits"]) == (2, 2, 0, 0)
    assert project.plan("--exit-code").exit_code == 1
    assert "  > download  " in project.plan().stdout
    for i, data in kept.items():
        project.image(i).write_bytes(data)
    assert project.plan("--exit-code").exit_code == 0


def test_failed_tasks_need_retry_failed_to_be_planned(project: Project) -> None:
    assert project.run(fail_share=1.0).exit_code == 1
    s = summary(project)
    assert (s["failed"], s["create"]) == (4, 0)
    assert project.plan("--exit-code").exit_code == 0  # a plain run would do nothing
    assert "  ! failed  " in project.plan().stdout
    s = summary(project, "--retry-failed")
    assert (s["failed"], s["create"], s["credits"]) == (0, 4, 400.0)
    assert project.plan("--retry-failed", "--exit-code").exit_code == 1


def test_records_left_submitting_are_running_and_their_credits_shown_apart(project: Project) -> None:
    # A run killed during its submits leaves `submitting` records: paid or not, nobody knows.
    assert project.run().exit_code == 0
    records = project.records()
    for key in sorted(records)[:2]:
        records[key].update(status="submitting", outputs=[], task_id=None, credits_used=None)
    project.put_records(records)
    project.write(SHOTS.replace("a teapot", "a blue teapot"))  # 2 new tasks
    s = summary(project)
    assert (s["create"], s["running"], s["submitting"]) == (2, 2, 2)
    assert (s["create_credits"], s["submitting_credits"], s["credits"]) == (200.0, 200.0, 400.0)
    line = project.plan().stdout.splitlines()[-1]
    assert line.startswith(
        "Plan: 2 to create (~200 credits at up to 100 a task), 0 to download, 2 running, of which 2 "
        "left submitting (outcome unknown: ~200 credits more if the service does not know them; a run "
        "counts ~400 against --max-credits, 'imgbatch status --refresh' asks about them without new spend)."
    ), line
    # the run's refusal gives the same figure, and the way to collect them without new spend
    refused = project.run("--max-credits", "300")
    assert refused.exit_code == 4
    assert "this run would submit 4 tasks, about 400 credits" in refused.stderr
    assert (
        "2 of them were left submitting by an earlier run (paid or not, the outcome is unknown): "
        "'imgbatch status --refresh' collects those without new spend" in refused.stderr
    )
    assert [r["status"] for r in project.records().values()].count("submitting") == 2  # nothing sent


def test_a_refusal_without_submitting_records_does_not_mention_them(project: Project) -> None:
    refused = project.run("--max-tasks", "1")
    assert refused.exit_code == 4 and "over --max-tasks 1; nothing was sent" in refused.stderr
    assert "submitting" not in refused.stderr and "status --refresh" not in refused.stderr


def test_running_records_and_the_ledgers_price(project: Project) -> None:
    assert project.run().exit_code == 0
    records = project.records()
    first = sorted(records)[0]
    records[first].update(status="processing", outputs=[], estimated_credits=250)
    project.put_records(records)
    project.write(SHOTS.replace("a teapot", "a blue teapot"))
    s = summary(project)
    # the pot's two tasks are new, priced at the highest estimate the ledger has seen
    assert (s["running"], s["create"], s["orphaned"], s["credits"]) == (1, 2, 2, 500.0)
    assert project.plan("--exit-code").exit_code == 1
    text = project.plan().stdout
    assert "  ~ running   " in text and "  - orphaned  " in text
    assert "'imgbatch prune' lists and removes them" in text


def test_jsonl_marks_each_task_and_orphan(project: Project) -> None:
    assert project.run().exit_code == 0
    project.write(SHOTS.replace("a mug", "a red mug"))
    lines = project.plan("--format", "jsonl").jsonl()
    actions = Counter(line["action"] for line in lines)
    assert actions == {"create": 2, "orphaned": 2, "done": 2}
    assert all(line["params"]["prompt"] == "a red mug" for line in lines if line["action"] == "create")


def test_shards_partition_the_tasks_by_a_stable_hash() -> None:
    ids = [f"m.p{i}.{i:020x}" for i in range(2000)]
    counts = Counter(shard_of(i, 4) for i in ids)
    assert set(counts) == {1, 2, 3, 4} and min(counts.values()) > 400
    # a task's shard depends on its id alone, never on what else is planned
    assert [shard_of(i, 4) for i in ids[:10]] == [shard_of(i, 4) for i in ids[:10]]
    assert parse_shard(" 2/4 ").contains(ids[0]) == (shard_of(ids[0], 4) == 2)


def test_plan_and_run_with_shards_cover_every_task_once(project: Project) -> None:
    project.write(SHOTS.replace("16:9@1K", "16:9@1K', '4:3@1K', '3:4@1K"))
    everything = {
        line["out_task_id"]
        for line in project.cli("plan", str(project.manifests), "--format", "jsonl").jsonl()
    }
    assert len(everything) == 8
    parts = []
    for i in (1, 2, 3):
        lines = project.cli("plan", str(project.manifests), "--format", "jsonl", "--shard", f"{i}/3").jsonl()
        parts.append({line["out_task_id"] for line in lines})
    assert set().union(*parts) == everything and sum(map(len, parts)) == 8
    # one runner runs shard 1 with its own ledger: exactly that part is submitted
    assert project.run("--shard", "1/3").exit_code == 0
    assert set(project.records()) == parts[0]
    s = summary(project, "--shard", "1/3")
    assert (s["done"], s["create"]) == (len(parts[0]), 0)


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_shard_is_a_usage_error(project: Project, bad: str) -> None:
    result = project.cli("plan", str(project.manifests), "--shard", bad)
    assert result.exit_code == 2
    assert "--shard" in result.stderr and "e.g. --shard 2/4" in result.stderr


def test_exit_code_needs_a_ledger(project: Project) -> None:
    result = project.cli("plan", str(project.manifests), "--exit-code")
    assert result.exit_code == 2 and "need --ledger" in result.stderr


def test_a_clone_without_the_image_folder_plans_every_image_as_a_download(project: Project) -> None:
    assert project.run().exit_code == 0
    kept = project.root / "kept"
    project.out.rename(kept)
    s = summary(project)
    assert (s["download"], s["done"], s["create"]) == (4, 0, 0)
    status = project.cli("status", str(project.manifests), "--ledger", str(project.ledger))
    images_missing = status.stdout.splitlines()[1].split()[-2:]
    assert status.exit_code == 1 and images_missing == ["0", "4"]
    kept.rename(project.out)
    assert project.plan("--exit-code").exit_code == 0
