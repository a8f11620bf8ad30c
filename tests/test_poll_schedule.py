"""Polling: a batch asks most tasks once, when they are likely done, instead of on a fixed
schedule that asks most of them twice or more; slow tasks still get a bounded backoff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner.ledger import Ledger
from runner.pollschedule import MAX_FIRST_WAIT, POLL_CAP, PollSchedule, duration
from runner.records import merge_answer
from runner.sandbox import Faults
from tests.test_run import World, world  # noqa: F401 - the fixture

ISO = "2025-12-22T06:03:{:06.3f}Z"


def done(seconds: float) -> dict[str, object]:
    return {"status": "completed", "created_at": ISO.format(10), "completed_at": ISO.format(10 + seconds)}


def test_a_class_is_first_asked_when_most_of_its_tasks_were_done() -> None:
    s = PollSchedule(poll_interval=0.5)
    assert s.first_wait("2K") == 0.5  # nothing known: --poll-interval
    for took in (1.0, 1.2, 0.9, 4.0):
        s.completed("2K", done(took))
    assert s.first_wait("2K") == pytest.approx(1.2)  # the 75th percentile: 3 of the 4 were done
    assert s.first_wait("1K") == 0.5  # another size class learns on its own


def test_unfinished_answers_back_the_class_off_until_a_task_completes() -> None:
    s = PollSchedule(poll_interval=0.5)
    s.unfinished("2K", 0.5)
    assert s.first_wait("2K") == pytest.approx(0.75)
    s.unfinished("2K", 0.75)
    assert s.first_wait("2K") == pytest.approx(1.125)
    s.completed("2K", done(1.0))
    assert s.first_wait("2K") == pytest.approx(1.0)  # then what tasks took, not the backoff


def test_the_learnt_wait_is_bounded_and_never_below_the_poll_interval() -> None:
    s = PollSchedule(poll_interval=2.0)
    s.completed("4K", done(0.1))
    assert s.first_wait("4K") == 2.0
    s = PollSchedule(poll_interval=2.0)
    for _ in range(10):
        s.completed("4K", {"created_at": 0, "completed_at": 20 * 3600})  # a clock gone wrong
    assert s.first_wait("4K") == MAX_FIRST_WAIT
    assert [s.wait_before(n) for n in (1, 2, 3, 9)] == [2.0, 3.0, 4.5, POLL_CAP]
    assert PollSchedule(poll_interval=0).wait_before(5000) == 0  # asked without waiting, however often


def test_only_real_timestamps_teach_anything() -> None:
    assert duration("2025-12-22T06:03:28.242Z", "2025-12-22T06:03:58.742Z") == pytest.approx(30.5)
    assert duration(1766383408.0, 1766383409.5) == pytest.approx(1.5)
    for created, completed in [(None, "2025-12-22T06:03:28Z"), ("soon", "later"), (True, 3), (5.0, 1.0)]:
        assert duration(created, completed) is None
    s = PollSchedule(poll_interval=0.5)
    s.completed("2K", {"status": "completed", "created_at": None, "completed_at": None})
    assert s.first_wait("2K") == 0.5


def test_numeric_timestamps_are_not_recorded_so_the_ledger_stays_readable(tmp_path: Path) -> None:
    record = {
        "out_task_id": "a.p0.x",
        "submit_id": "a.p0.x",
        "status": "pending",
        "params": {},
        "outputs": [],
    }
    merged = merge_answer(record, {"status": "pending", "created_at": 1766383408.5, "task_id": "t1"})
    assert "created_at" not in merged and merged["task_id"] == "t1"
    path = tmp_path / "l.jsonl"
    ledger = Ledger.open(path, write=True)
    ledger.put(merged)
    ledger.close()
    assert Ledger.open(path, write=False).get("a.p0.x") is not None


def test_a_batch_longer_than_one_task_asks_most_tasks_once(world: Callable[..., World]) -> None:  # noqa: F811
    # 40 tasks through 2 connections, 10 ms per request, 0.1 s per task: most are submitted
    # after the first ones completed. The fixed schedule from the 10 ms poll interval (10,
    # 15, 22, 34 ms...) asked each task about 3 times here (1.15 with the learnt one).
    prompts = "\n".join(f"  - {{id: p{i}, prompt: subject {i}}}" for i in range(40))
    w = world(
        manifest=f"version: 1\nname: many\nsizes: ['1:1@1K']\nprompts:\n{prompts}\n",
        faults=Faults(latency=0.01),
    )
    w.sandbox.task_seconds = 0.1
    code, summary = w.run(concurrency=2)
    assert code == 0 and summary["completed"] == 40
    queries = w.sandbox.stats()["requests"]["/api/openapi/query"]
    assert queries / 40 < 1.6, w.sandbox.stats()["requests"]
    assert w.sandbox.submitted_twice() == []


def test_one_task_per_unknown_class_is_asked_every_poll_interval_until_the_class_learns() -> None:
    # The first image of a class must be found done as soon as a fixed-interval client would
    # find it; the other tasks of the class keep backing off, so a run of long tasks does not
    # ask every task every --poll-interval.
    s = PollSchedule(poll_interval=0.5)
    assert s.claim_probe("2K") is True
    assert s.claim_probe("2K") is False  # one probe per class
    assert s.claim_probe("1K") is True  # each class has its own
    assert s.probing("2K")
    s.release_probe("2K")  # the probe failed or was given up on: another task takes over
    assert s.claim_probe("2K") is True
    s.completed("2K", done(1.0))
    assert not s.probing("2K")  # learnt: the probe goes back to the learnt schedule
    s.release_probe("2K")
    assert s.claim_probe("2K") is False  # nothing left to probe


def test_the_probe_finds_the_first_task_done_within_one_poll_interval(world: Callable[..., World]) -> None:  # noqa: F811
    # One task of 1 s, asked every 0.1 s: found done by the query after it completed (about
    # the 10th). The growing schedule (0.1, then 0.15, 0.22, 0.34, 0.51 s apart) asked it 5
    # times and first after it was done up to 0.5 s late.
    w = world(manifest="version: 1\nname: one\nsizes: ['1:1@1K']\nprompts: [{id: p0, prompt: subject}]\n")
    w.sandbox.task_seconds = 1.0
    code, summary = w.run(concurrency=1, poll_interval=0.1)
    assert code == 0 and summary["completed"] == 1
    assert 8 <= w.sandbox.stats()["requests"]["/api/openapi/query"] <= 12, w.sandbox.stats()["requests"]
