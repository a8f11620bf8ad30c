"""Jobs start in plan order, only as many about to submit as the window allows, and the first
failing job ends the whole run at once (a revoked key must not let the batch go on spending)."""

from __future__ import annotations

import asyncio

import pytest

from runner.feed import Place, run_fed


def test_jobs_start_in_order_and_never_more_than_the_window_before_their_submit() -> None:
    started: list[int] = []
    holding = 0
    most = 0

    async def job(i: int, place: Place) -> None:
        nonlocal holding, most
        started.append(i)
        holding += 1
        most = max(most, holding)
        await asyncio.sleep(0.001)  # the submit
        holding -= 1
        place.give_back()
        await asyncio.sleep(0.01)  # polling holds no place

    asyncio.run(run_fed(list(range(50)), job, window=4))
    assert started == list(range(50))
    assert most == 4


def test_a_job_failing_after_its_submit_stops_the_feeding_and_cancels_the_rest() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def job(i: int, place: Place) -> None:
        started.append(i)
        try:
            await asyncio.sleep(0.001)  # the submit: feeding all 10,000 would take over 3 s
            place.give_back()
            if i == 2:
                await asyncio.sleep(0.01)
                raise PermissionError("key revoked")
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    async def main() -> float:
        loop = asyncio.get_running_loop()
        t = loop.time()
        with pytest.raises(PermissionError):
            await run_fed(range(10_000), job, window=3)
        return loop.time() - t

    assert asyncio.run(main()) < 1
    assert len(started) < 1000
    assert set(cancelled) == set(started) - {2}
