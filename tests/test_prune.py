"""imgbatch prune: a dry run by default; --apply removes orphaned records and their images."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from tests.project_util import SHOTS, Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    p.write(SHOTS)
    assert p.run().exit_code == 0
    p.write(SHOTS.replace("a teapot", "a blue teapot"))  # the pot's two old tasks are orphaned
    return p


def prune(p: Project, *extra: str) -> tuple[int, str, str]:
    result = p.cli("prune", str(p.manifests), "--ledger", str(p.ledger), "--out", str(p.out), *extra)
    return result.exit_code, result.stdout, result.stderr


def test_without_apply_it_lists_and_changes_nothing(project: Project) -> None:
    before = project.ledger.read_bytes()
    images = sorted(project.out.iterdir())
    code, out, _ = prune(project)
    assert code == 0
    pots = sorted(k for k in project.records() if ".pot." in k)
    for key in pots:
        assert f"- {key}  shots/pot  completed" in out
        assert str(project.image(key)) in out
    assert "2 orphaned records, 2 image files. Nothing was changed" in out
    assert project.ledger.read_bytes() == before and sorted(project.out.iterdir()) == images


def test_apply_removes_the_records_and_their_images_only(project: Project) -> None:
    records = project.records()
    pots = sorted(k for k in records if ".pot." in k)
    pot_images = [project.image(k) for k in pots]
    kept_lines = [line for line in project.ledger.read_text().splitlines() if ".pot." not in line]
    code, out, _ = prune(project, "--apply")
    assert code == 0 and "Pruned 2 records and 2 image files." in out
    assert not any(p.exists() for p in pot_images)
    assert project.ledger.read_text().splitlines() == kept_lines  # the rest byte for byte, sorted
    assert len(list(project.out.iterdir())) == 2
    assert project.plan("--format", "json").json()["summary"]["orphaned"] == 0
    code, out, _ = prune(project, "--apply")
    assert code == 0 and "Nothing to prune" in out


def test_files_outside_out_are_listed_but_kept(project: Project, tmp_path: Path) -> None:
    records = project.records()
    pot = sorted(k for k in records if ".pot." in k)[0]
    elsewhere = tmp_path / "elsewhere.png"
    project.image(pot).rename(elsewhere)
    records[pot]["outputs"][0]["path"] = "elsewhere.png"
    project.put_records(records)
    code, out, _ = prune(project, "--apply")
    assert code == 0 and f"{elsewhere} (outside --out: kept)" in out
    assert elsewhere.exists() and pot not in project.records()


def test_apply_refuses_while_a_run_holds_the_ledger(project: Project) -> None:
    before = project.ledger.read_bytes()
    with open(project.ledger.with_name(project.ledger.name + ".lock"), "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        code, _, err = prune(project, "--apply")
    assert code == 4 and "in use by another imgbatch process" in err  # a holder that wrote no pid
    assert project.ledger.read_bytes() == before
    assert all(json.loads(line) for line in before.decode().splitlines())
