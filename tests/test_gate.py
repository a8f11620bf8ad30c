"""The adaptive gate in front of the API: 429s narrow it, successes widen it again, and a
run against a service allowing few requests a second completes in one run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from runner.client import RetryPolicy
from runner.gate import MIN_RATE, AdaptiveGate
from runner.sandbox import Faults
from tests.sandbox_util import loopback
from tests.test_run import World


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_429_halves_concurrency_and_rate_and_pauses_for_retry_after() -> None:
    clock = Clock()
    gate = AdaptiveGate(8, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(8):
            await gate.acquire()
        for _ in range(8):
            await gate.release(throttled=False)
        await gate.acquire()
        await gate.release(throttled=True, retry_after=2.0)
        assert gate.limit == pytest.approx(4.0, abs=0.6) and gate.rate is not None
        first_rate = gate.rate
        await gate.acquire()  # waits out the Retry-After
        assert clock.sleeps and clock.sleeps[-1] == pytest.approx(2.0)
        await gate.release(throttled=False)
        assert gate.rate > first_rate  # successes add back
        for _ in range(200):
            await gate.acquire()
            await gate.release(throttled=False)
        assert gate.limit == 8  # back to the full width

    asyncio.run(go())


def test_many_429s_in_one_window_cut_once_and_never_below_the_floor() -> None:
    clock = Clock()
    gate = AdaptiveGate(16, rate=10.0, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(16):
            await gate.acquire()
        for _ in range(16):
            await gate.release(throttled=True)
        assert gate.limit == 8 and gate.rate == 5.0  # one cut for one burst
        for _ in range(40):
            clock.now += 1.5
            await gate.acquire()
            await gate.release(throttled=True)
        assert gate.limit == 1 and gate.rate == MIN_RATE

    asyncio.run(go())


def test_the_rate_never_grows_past_the_users_rate() -> None:
    clock = Clock()
    gate = AdaptiveGate(4, rate=2.0, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(50):
            await gate.acquire()
            await gate.release(throttled=False)
        assert gate.rate == 2.0

    asyncio.run(go())
    starts = sum(clock.sleeps)
    assert starts == pytest.approx(49 / 2.0, rel=0.05)  # 50 starts at 2 a second


MANY = "version: 1\nname: busy\nsizes: ['1:1@1K']\nprompts:\n" + "".join(
    f"  - {{id: p{i}, prompt: subject {i}}}\n" for i in range(60)
)


def test_a_60_task_run_against_a_rate_limited_service_completes_in_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    w = World(tmp_path, monkeypatch, capsys, manifest=MANY, faults=Faults(rate_limit=30))
    w.sandbox.task_seconds = 0.3
    started = time.monotonic()
    with loopback(w.sandbox, image_host="127.0.0.2") as url:
        import tests.test_run as tr

        monkeypatch.setattr(tr, "FAST", RetryPolicy(attempts=3, base=0.05, cap=0.5))
        code, summary = w.run(url, concurrency=16)
    assert code == 0 and summary["completed"] == 60 and summary["unresolved"] == 0, summary["errors"]
    assert w.sandbox.submitted_twice() == []
    assert w.sandbox.throttled > 0  # the service did push back, and the run kept going
    assert summary["throttled"] == w.sandbox.throttled
    assert time.monotonic() - started < 60


def test_waiters_get_slots_in_arrival_order_never_more_than_the_width() -> None:
    gate = AdaptiveGate(3)
    order: list[int] = []
    peak = 0

    async def one(i: int) -> None:
        nonlocal peak
        await gate.acquire()
        peak = max(peak, gate.in_flight)
        order.append(i)
        await asyncio.sleep(0)
        await gate.release(throttled=False)

    async def go() -> None:
        await asyncio.gather(*(one(i) for i in range(500)))

    asyncio.run(go())
    assert order == list(range(500)) and peak == 3 and gate.in_flight == 0


def test_a_cancelled_waiter_leaves_no_slot_taken() -> None:
    gate = AdaptiveGate(1)

    async def go() -> None:
        await gate.acquire()
        waiters = [asyncio.create_task(gate.acquire()) for _ in range(5)]
        await asyncio.sleep(0)
        waiters[0].cancel()  # still waiting
        await gate.release(throttled=False)  # hands the slot to waiters[1]
        waiters[2].cancel()
        await asyncio.sleep(0)
        assert waiters[1].done() and not waiters[1].cancelled() and gate.in_flight == 1
        await gate.release(throttled=False)
        await asyncio.sleep(0)
        assert waiters[3].done() and gate.in_flight == 1  # the cancelled one was skipped
        await gate.release(throttled=False)  # waiters[3] done: the slot goes to waiters[4]
        waiters[4].cancel()  # handed the slot, cancelled before it ran: it must pass it on
        await asyncio.gather(*waiters, return_exceptions=True)
        assert waiters[4].cancelled()
        assert gate.in_flight == 0
        await asyncio.wait_for(gate.acquire(), 1)  # the slot is free again

    asyncio.run(go())
