"""The ledger's rewrite policy during a run: the sorted file is rewritten once the journal has
grown as large as it (so a long run stays linear), and nothing is ever only in memory: every
change is in the journal first, and a reader (or the next run after a crash) sees it."""

from __future__ import annotations

import json
from pathlib import Path

from runner.ledger import Ledger


def record(i: int, status: str = "completed") -> dict[str, object]:
    return {"out_task_id": f"m.p{i:04d}.{i:020x}", "status": status, "params": {"prompt": f"p {i}"}}


def test_the_periodic_rewrite_waits_for_the_journal_to_match_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ledger = Ledger.open(path, write=True)
    for i in range(100):
        ledger.put(record(i))
    ledger.compact()
    before = path.read_bytes()
    ledger.put(record(7, "failed"))
    ledger.compact_if_due()  # one change against a 100-record ledger: not yet worth a rewrite
    assert path.read_bytes() == before
    assert ledger.journal_path.exists()
    # A reader (status) and a run after a crash both see the change, from the journal.
    assert Ledger.open(path, write=False).records[str(record(7)["out_task_id"])]["status"] == "failed"
    for i in range(100):
        ledger.put(record(i, "processing"))
    ledger.compact_if_due()  # now the journal holds as much as the ledger: rewrite
    assert not ledger.journal_path.exists()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["status"] for x in lines] == ["processing"] * 100
    ledger.close()


def test_a_rewrite_keeps_unchanged_lines_and_the_sort_order(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ledger = Ledger.open(path, write=True)
    for i in (5, 3, 9, 1):
        ledger.put(record(i))
    ledger.close()
    first = path.read_text(encoding="utf-8").splitlines()
    assert first == sorted(first)
    ledger = Ledger.open(path, write=True)
    ledger.put(record(4))
    ledger.put({**record(3), "status": "failed"})
    ledger.close()
    again = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["out_task_id"] for x in again] == sorted(
        str(record(i)["out_task_id"]) for i in (1, 3, 4, 5, 9)
    )
    assert again[0] == first[0] and again[3:] == first[2:]  # untouched records: same bytes
    assert json.loads(again[1])["status"] == "failed"


def test_put_keeps_a_snapshot_not_the_callers_object(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "l.jsonl", write=True)
    mine = record(1)
    ledger.put(mine)
    mine["params"]["prompt"] = "changed later"  # type: ignore[index]
    assert ledger.records[str(mine["out_task_id"])]["params"]["prompt"] == "p 1"
    ledger.close()
    assert "changed later" not in (tmp_path / "l.jsonl").read_text(encoding="utf-8")
