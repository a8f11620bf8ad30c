"""Never pay twice: a paid task is `lost` only after repeated denials over time, --retry-failed
asks again before resubmitting, and answers about another task are never recorded."""

# ruff: noqa: F811  (the `world` fixture is imported from test_run and named as a parameter)
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from runner.client import ApiClient, Kind, RetryPolicy
from runner.sandbox import Faults
from tests.sandbox_util import loopback
from tests.test_run import World, world  # noqa: F401 - the fixture

MODES = ["in-process", "loopback"]


@contextlib.contextmanager
def served(w: World, mode: str) -> Iterator[str | None]:
    if mode == "loopback":
        with loopback(w.sandbox) as url:
            yield url
    else:
        yield None


@pytest.mark.parametrize("mode", MODES)
def test_transient_404s_never_make_a_paid_task_lost(world: Callable[..., World], mode: str) -> None:
    # Every task is denied twice before the service finds it (replication lag).
    w = world(faults=Faults(query_404_times=2))
    with served(w, mode) as url:
        code, summary = w.run(url, lost_after=0.3)
    assert code == 0 and summary["completed"] == 6
    assert all(r["status"] == "completed" for r in w.records())
    assert all(n == 2 for n in w.sandbox.denied.values()) and len(w.sandbox.denied) == 6
    assert w.sandbox.submitted_twice() == [] and len(w.sandbox.tasks) == 6


def test_replication_lag_costs_seconds_not_the_whole_span(world: Callable[..., World]) -> None:
    # With the real 60 s span: a task denied once right after its submit is asked again 1 s
    # later (then 2 s, 4 s, ...), not after 20 s.
    w = world(faults=Faults(query_404_times=1))
    started = time.monotonic()
    code, summary = w.run(lost_after=60.0)
    took = time.monotonic() - started
    assert code == 0 and summary["completed"] == 6
    assert 1.0 <= took < 10, took
    assert w.sandbox.submitted_twice() == [] and len(w.sandbox.tasks) == 6


def test_the_first_re_asks_come_sooner_and_lost_still_needs_three_denials_over_the_span() -> None:
    from runner.lost import LOST_DENIALS, denial_wait

    at, asked = 0.0, [0.0]  # seconds after the first denial, when the service was asked
    while len(asked) < LOST_DENIALS or at < 60.0:
        at += denial_wait(60.0, len(asked), at)
        asked.append(at)
    assert asked[:5] == [0.0, 1.0, 3.0, 7.0, 15.0]  # a replication delay is found in seconds
    assert asked[-1] == 60.0 and len(asked) == 7  # lost only at the span, not before or long after
    # a short span still needs three denials
    assert [denial_wait(0.3, 1, 0.0), denial_wait(0.3, 2, 0.3)] == [0.3, 0.0]


def forget_all(w: World) -> dict[str, Any]:
    """The service loses its tasks (for a while): returns them, to give back."""
    gone = {"tasks": dict(w.sandbox.tasks), "by_task_id": dict(w.sandbox.by_task_id)}
    w.sandbox.tasks.clear()
    w.sandbox.by_task_id.clear()
    return gone


def give_back(w: World, gone: dict[str, Any]) -> None:
    w.sandbox.tasks.update(gone["tasks"])
    w.sandbox.by_task_id.update(gone["by_task_id"])


@pytest.mark.parametrize("mode", MODES)
def test_lost_only_after_three_denials_over_the_span_and_retry_failed_asks_first(
    world: Callable[..., World], mode: str
) -> None:
    w = world()
    with served(w, mode) as url:
        w.run(url, wait=False)
        gone = forget_all(w)
        queries = w.sandbox.requests["/api/openapi/query"]
        started = time.monotonic()
        code, summary = w.run(url, lost_after=0.3)
        took = time.monotonic() - started
        assert code == 1 and summary["failed"] == 6
        assert took >= 0.3  # three denials, backed off over the whole span
        assert w.sandbox.requests["/api/openapi/query"] - queries == 6 * 3
        for r in w.records():
            assert r["status"] == "lost" and "denied knowing this task 3 times" in r["error"]
        for line in summary["todo"]:  # one piece of advice, not two that disagree
            assert line.count("--retry-failed") == 1 and "then resubmits it" in line
        # The service finds them again: --retry-failed asks first and adopts, paying nothing.
        give_back(w, gone)
        code, summary = w.run(url, retry_failed=True)
        assert code == 0 and summary["adopted"] == 6 and summary["submitted"] == 0
        assert all(r["attempt"] == 1 and r["status"] == "completed" for r in w.records())
        assert w.sandbox.submitted_twice() == [] and len(w.sandbox.tasks) == 6


def test_retry_failed_resubmits_a_lost_task_the_service_still_denies(world: Callable[..., World]) -> None:
    w = world()
    w.run(wait=False)
    forget_all(w)
    assert w.run(lost_after=0.05)[0] == 1
    code, summary = w.run(retry_failed=True)
    assert code == 0 and summary["submitted"] == 6 and summary["adopted"] == 0
    assert all(r["submit_id"].endswith("-r2") for r in w.records())


def test_status_refresh_never_marks_a_task_lost(world: Callable[..., World]) -> None:
    w = world()
    w.run(wait=False)
    forget_all(w)
    code, _ = w.status(refresh=True)
    assert code == 5
    assert all(r["status"] == "pending" for r in w.records())


@pytest.mark.parametrize("mode", MODES)
def test_answers_about_another_task_are_never_recorded(world: Callable[..., World], mode: str) -> None:
    # Seed 7: the first two queries are answered about another task, however few a run asks.
    w = world(seed=7, faults=Faults(wrong_task_share=0.4))
    with served(w, mode) as url:
        code, summary = w.run(url)
    assert code == 0 and summary["completed"] == 6
    by_id = {t.out_task_id: t for t in w.sandbox.tasks.values()}
    for r in w.records():
        assert r["task_id"] == by_id[r["submit_id"]].task_id  # each record describes its own task
    assert any("answers were about another task" in x for x in summary["warnings"])
    assert w.sandbox.submitted_twice() == []


def answering(data: dict[str, Any]) -> httpx.MockTransport:
    return httpx.MockTransport(lambda r: httpx.Response(200, json={"statusCode": 200, "data": data}))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"out_task_id": "other", "status": "completed"}, "about another task (out_task_id 'other'"),
        ({"out_task_id": "../mine", "status": "completed"}, "'../mine', not a plain id"),
        ({"out_task_id": 7, "status": "completed"}, "out_task_id '7', not a plain id"),
        ({"task_id": "t-2", "status": "completed"}, "about another task (task_id 't-2', expected 't-1')"),
    ],
)
def test_the_client_refuses_and_retries_answers_about_another_task(data: dict[str, Any], reason: str) -> None:
    import asyncio

    async def go() -> None:
        client = ApiClient(
            "http://api.test", "k", transport=answering(data), retry=RetryPolicy(3, 0.0, 0.0)
        )
        answer = await client.query("mine", "t-1")
        await client.aclose()
        assert answer.kind is Kind.UNKNOWN and reason in answer.message and "not accepted" in answer.message
        assert client.requests == 3 and client.wrong_answers == 3

    asyncio.run(go())


def test_a_plain_answer_about_the_task_asked_is_accepted() -> None:
    import asyncio

    async def go() -> None:
        data = {"out_task_id": "mine", "task_id": "t-1", "status": "completed"}
        client = ApiClient("http://api.test", "k", transport=answering(data))
        answer = await client.query("mine", "t-1")
        await client.aclose()
        assert answer.kind is Kind.OK and client.wrong_answers == 0

    asyncio.run(go())


@pytest.mark.parametrize("mode", MODES)
def test_an_unconfirmed_submit_is_denied_over_the_span_before_its_id_is_sent_again(
    world: Callable[..., World], mode: str
) -> None:
    # Every submit is recorded and answered with an error anyway; the first query of each task
    # says 404 (replication lag). The id must not be sent again on that single denial.
    w = world(faults=Faults(lost_submit_share=1, query_404_times=1))
    with served(w, mode) as url:
        started = time.monotonic()
        code, summary = w.run(url, lost_after=0.3)
        took = time.monotonic() - started
    assert code == 0 and summary["completed"] == 6 and summary["adopted"] == 6
    assert w.sandbox.submitted_twice() == [] and w.sandbox.requests["/api/openapi/submit"] == 6
    assert took < 5

