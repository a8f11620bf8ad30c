"""imgbatch merge-ledgers: shard ledgers and branches, and git's merge driver in a real repo."""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner import verify
from runner.commands.init import GITIGNORE_LINES
from tests.helpers import run_cli
from tests.project_util import SHOTS, Project


def rec(key: str, status: str = "completed", **fields: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"out_task_id": key, "status": status, "attempt": 1, "outputs": []}
    if status == "completed":
        r["outputs"] = [{"path": f"images/{key}.png", "sha256": "a" * 64}]
    r.update(fields)
    return r


def write(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def merge(*args: str | Path) -> tuple[int, str]:
    r = run_cli("merge-ledgers", *map(str, args))
    return r.exit_code, r.stderr


def test_shard_ledgers_merge_sorted_byte_stable_in_any_order(tmp_path: Path) -> None:
    base = write(tmp_path / "base", rec("m.a"), rec("m.b", "processing"))
    one = write(tmp_path / "1", rec("m.a"), rec("m.b", "processing"), rec("m.d"))
    two = write(tmp_path / "2", rec("m.a"), rec("m.b"), rec("m.c", "submitting"))
    three = write(tmp_path / "3", rec("m.a"), rec("m.b", "processing"), rec("m.c", "pending"))
    outputs = set()
    for i, order in enumerate(itertools.permutations([one, two, three])):
        out = tmp_path / f"out{i}"
        code, err = merge("-o", out, "--base", base, *order)
        assert code == 0, err
        outputs.add(out.read_bytes())
    [text] = outputs
    lines = [json.loads(line) for line in text.decode().splitlines()]
    assert [r["out_task_id"] for r in lines] == ["m.a", "m.b", "m.c", "m.d"]
    assert [r["status"] for r in lines] == ["completed", "completed", "pending", "completed"]
    assert all(list(r) == sorted(r) for r in lines)
    # merging the result again changes no byte
    again = tmp_path / "again"
    assert merge("-o", again, "--base", base, tmp_path / "out0", one, two, three)[0] == 0
    assert again.read_bytes() == text


def test_a_retry_beats_the_failure_it_retries(tmp_path: Path) -> None:
    a = write(tmp_path / "a", rec("m.a", "failed", error="boom"))
    b = write(tmp_path / "b", rec("m.a", "submitting", attempt=2, submit_id="m.a-r2"))
    assert merge("-o", tmp_path / "o", a, b)[0] == 0
    [r] = [json.loads(line) for line in (tmp_path / "o").read_text().splitlines()]
    assert (r["status"], r["attempt"]) == ("submitting", 2)


def test_with_a_base_a_pruned_record_stays_deleted(tmp_path: Path) -> None:
    base = write(tmp_path / "base", rec("m.a"), rec("m.old"))
    pruned = write(tmp_path / "ours", rec("m.a"))
    untouched = write(tmp_path / "theirs", rec("m.a"), rec("m.old"), rec("m.new"))
    code, err = merge("-o", tmp_path / "o", "--base", base, pruned, untouched)
    assert code == 0 and "1 deleted as in the base" in err
    assert "m.old" not in (tmp_path / "o").read_text() and "m.new" in (tmp_path / "o").read_text()
    # without a base there is no telling a deletion from an addition: the union
    assert merge("-o", tmp_path / "u", pruned, untouched)[0] == 0
    assert "m.old" in (tmp_path / "u").read_text()
    # deleted on one side but advanced on the other: paid work is kept, and said so
    base2 = write(tmp_path / "base2", rec("m.x", "processing"))
    advanced = write(tmp_path / "adv", rec("m.x"))
    code, err = merge("-o", tmp_path / "k", "--base", base2, tmp_path / "ours", advanced)
    assert code == 0 and "m.x: deleted on one side, changed on" in err
    assert '"status": "completed"' in (tmp_path / "k").read_text()


def test_one_id_completed_with_different_images_is_a_conflict(tmp_path: Path) -> None:
    a = write(tmp_path / "a", rec("m.a"), rec("m.ok"))
    other = rec("m.a")
    other["outputs"] = [{"path": "images/m.a.png", "sha256": "b" * 64}]
    b = write(tmp_path / "b", other, rec("m.ok"))
    code, err = merge("-o", tmp_path / "o", a, b)
    assert code == 1
    assert "imgbatch: conflict: m.a: completed with different images" in err
    assert "aaaaaaaaaaaa" in err and "bbbbbbbbbbbb" in err
    assert len((tmp_path / "o").read_text().splitlines()) == 2  # written, one side's record kept


def test_ledgers_of_different_services_do_not_merge_silently(tmp_path: Path) -> None:
    a = write(tmp_path / "a", rec("m.a", endpoint="https://aireiter.com:443"))
    b = write(tmp_path / "b", rec("m.b", endpoint="sandbox"))
    c = write(tmp_path / "c", rec("m.c", endpoint="https://aireiter.com:443"))
    code, err = merge("-o", tmp_path / "o", a, b)
    assert code == 1 and "records of different services (https://aireiter.com:443, sandbox)" in err
    assert merge("-o", tmp_path / "o", a, c)[0] == 0
    assert (tmp_path / "o").read_text().count('"endpoint": "https://aireiter.com:443"') == 2


A = "https://aireiter.com:443"
B = "http://127.0.0.1:40029"
SANDBOX = "http://sandbox.imgbatch.invalid:80"


def test_one_id_recorded_against_two_services_is_a_conflict_even_with_the_same_images(
    tmp_path: Path,
) -> None:
    # The same manifest run on two services: the same ids, the same (deterministic) images,
    # paid twice. Merging them must not keep one and drop the other silently.
    a = write(tmp_path / "a", rec("m.a", endpoint=A), rec("m.b", endpoint=A))
    b = write(tmp_path / "b", rec("m.a", endpoint=B))
    code, err = merge("-o", tmp_path / "o", a, b)
    assert code == 1, err
    conflicts = [line for line in err.splitlines() if line.startswith("imgbatch: conflict:")]
    assert conflicts == [
        f"imgbatch: conflict: m.a: recorded against different services ({tmp_path / 'b'}: {B}; "
        f"{tmp_path / 'a'}: {A}); a ledger belongs to one service"
    ]
    assert "keep each service's records in a ledger of its own" in err
    assert "check which image is right" not in err
    # the same result whichever side is given first
    assert merge("-o", tmp_path / "o2", b, a)[0] == 1
    assert (tmp_path / "o").read_bytes() == (tmp_path / "o2").read_bytes()


def test_two_services_with_different_images_for_one_id_is_one_line_not_two(tmp_path: Path) -> None:
    a = write(tmp_path / "a", rec("m.a", endpoint=A))
    other = rec("m.a", endpoint=B)
    other["outputs"] = [{"path": "images/m.a.png", "sha256": "b" * 64}]
    b = write(tmp_path / "b", other)
    code, err = merge("-o", tmp_path / "o", a, b)
    assert code == 1
    assert [line for line in err.splitlines() if "conflict:" in line] == [
        f"imgbatch: conflict: m.a: recorded against different services ({tmp_path / 'b'}: {B}; "
        f"{tmp_path / 'a'}: {A}); a ledger belongs to one service"
    ]


def test_a_record_without_endpoint_goes_with_the_service_that_claimed_it(tmp_path: Path) -> None:
    # Written before imgbatch recorded endpoints (a real service's); the first real run since
    # stamped its endpoint on it. The two are one task, not two services.
    old = write(tmp_path / "old", rec("m.a", "processing"), rec("m.b"))
    claimed = write(tmp_path / "new", rec("m.a", endpoint=A), rec("m.c", endpoint=A))
    code, err = merge("-o", tmp_path / "o", old, claimed)
    assert code == 0, err
    merged = {r["out_task_id"]: r for r in map(json.loads, (tmp_path / "o").read_text().splitlines())}
    assert merged["m.a"]["endpoint"] == A and merged["m.a"]["status"] == "completed"
    assert "endpoint" not in merged["m.b"]  # the next real run claims it
    # ... but never with the embedded sandbox's, which refuses such records
    sandbox = write(tmp_path / "sbx", rec("m.a", endpoint=SANDBOX))
    code, err = merge("-o", tmp_path / "o", old, sandbox)
    assert code == 1
    assert (
        f"m.a: recorded against different services ({tmp_path / 'old'}: no endpoint (written before "
        f"imgbatch recorded them: a real service's); {tmp_path / 'sbx'}: {SANDBOX})"
    ) in err
    sandbox_other_id = write(tmp_path / "sbx2", rec("m.z", endpoint=SANDBOX))
    code, err = merge("-o", tmp_path / "o", old, sandbox_other_id)
    assert code == 1 and f"records of different services ({SANDBOX}, no endpoint" in err


def test_bad_input_is_exit_2(tmp_path: Path) -> None:
    code, err = merge("-o", tmp_path / "o", tmp_path / "missing.jsonl")
    assert code == 2 and "no such ledger file" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    code, err = merge("-o", tmp_path / "o", bad)
    assert code == 2 and "bad.jsonl:1:" in err and not (tmp_path / "o").exists()


def test_an_output_that_cannot_be_written_is_named_without_a_journal_to_blame(tmp_path: Path) -> None:
    out = tmp_path / "gone" / "o"  # its folder is not there
    code, err = merge("-o", out, write(tmp_path / "a.jsonl", rec("x")))
    assert code == 2 and f"{out}: cannot write the merged ledger" in err, err
    assert "journal" not in err and "internal error" not in err


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


def test_as_git_merge_driver_two_branches_that_ran_new_prompts_merge_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Images are remembered in the digest cache once 2 s old: on a loaded machine they were,
    # on a quick one not. Remember them at once, so the test is the same on both.
    monkeypatch.setattr(verify, "_SETTLED_NS", 0)
    repo = tmp_path / "repo"
    p = Project(repo)
    monkeypatch.chdir(repo)
    p.write(SHOTS)
    assert p.run().exit_code == 0
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitattributes").write_text("*.ledger.jsonl merge=imgbatch\n")
    # The per-machine files (lock, journal, digest cache) are ignored, as `imgbatch init` sets up.
    (repo / ".gitignore").write_text("".join(f"{line}\n" for line in GITIGNORE_LINES))
    driver = f"{shlex.quote(sys.executable)} -m runner merge-ledgers -o %A --base %O %A %B"
    git(repo, "config", "merge.imgbatch.driver", driver)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "shots")
    for branch, name in (("cups", "cups"), ("bowls", "bowls")):
        assert git(repo, "checkout", "-q", "-b", branch, "main").returncode == 0
        p.write(SHOTS.replace("name: shots", f"name: {name}"), f"{name}.yaml")
        assert p.run().exit_code == 0
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", name)
    git(repo, "checkout", "-q", "cups")
    merged = git(repo, "merge", "--no-edit", "bowls")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    text = p.ledger.read_text()
    assert "<<<<<<<" not in text and ">>>>>>>" not in text
    records = p.records()
    assert {r.split(".")[0] for r in records} == {"shots", "cups", "bowls"} and len(records) == 12
    assert list(records) == sorted(records)
    # every image of both branches is there, as the merged ledger records it
    assert p.plan("--exit-code").exit_code == 0
    assert git(repo, "status", "--porcelain").stdout == ""


def merge_branches(
    tmp_path: Path, base: list[dict[str, Any]], x: list[dict[str, Any]], y: list[dict[str, Any]]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A repo whose ledger is `base` on main, `x` and `y` on two branches; y merged into x
    with imgbatch as git's merge driver."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitattributes").write_text("*.ledger.jsonl merge=imgbatch\n")
    driver = f"{shlex.quote(sys.executable)} -m runner merge-ledgers -o %A --base %O %A %B"
    git(repo, "config", "merge.imgbatch.driver", driver)
    ledger = repo / "imgbatch.ledger.jsonl"
    write(ledger, *base)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    for branch, records in (("x", x), ("y", y)):
        git(repo, "checkout", "-q", "-b", branch, "main")
        write(ledger, *records)
        git(repo, "commit", "-q", "-am", branch)
    git(repo, "checkout", "-q", "x")
    return git(repo, "merge", "--no-edit", "y"), ledger


def test_as_git_merge_driver_a_real_conflict_stops_the_merge(tmp_path: Path) -> None:
    sides = []
    for sha in ("c", "d"):
        done = rec("m.a")
        done["outputs"][0]["sha256"] = sha * 64
        sides.append([done])
    result, ledger = merge_branches(tmp_path, [rec("m.a", "processing")], *sides)
    assert result.returncode != 0
    assert "CONFLICT" in result.stdout and "imgbatch.ledger.jsonl" in result.stdout
    assert "<<<<<<<" not in ledger.read_text()  # the driver wrote a ledger, not markers


def test_as_git_merge_driver_one_id_run_on_two_services_stops_the_merge(tmp_path: Path) -> None:
    keep = rec("m.keep", endpoint=A)
    # identical images, different services
    result, ledger = merge_branches(
        tmp_path, [keep], [keep, rec("m.a", endpoint=A)], [keep, rec("m.a", endpoint=B)]
    )
    assert result.returncode != 0
    assert "CONFLICT" in result.stdout and "imgbatch.ledger.jsonl" in result.stdout
    assert "m.a: recorded against different services" in result.stderr + result.stdout
    assert "<<<<<<<" not in ledger.read_text()
