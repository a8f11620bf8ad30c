"""Start one job per task in plan order, only as fast as their submits can go out.

Starting all jobs of a 10,000-task batch at once made every one of them build its record and
queue at the spending budget before the first request reached the wire (~0.4 s), and kept
10,000 half-started submits in memory. Instead a job is started when a place in a small window
is free; a job gives its place back as soon as it has its answer to the submit (then it only
waits and polls, which costs nothing up front), so the window only bounds the jobs that are
about to submit. The first job's request is on the wire before the second job exists.

Errors behave as if every job had been started at once: the first job that fails ends the
run at once, the others are cancelled (while the client is still open), and its error is raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class Place:
    """A job's place in the window; giving it back twice is harmless."""

    def __init__(self, window: asyncio.Semaphore) -> None:
        self._window: asyncio.Semaphore | None = window

    def give_back(self) -> None:
        if self._window is not None:
            self._window.release()
            self._window = None


async def run_fed(items: Sequence[T], job: Callable[[T, Place], Awaitable[None]], window: int) -> None:
    """Run job(item, place) for every item, starting them in order, at most `window` of them
    holding a place at once; each job's place is given back when the job ends, if not before."""
    places = asyncio.Semaphore(max(1, window))
    jobs: list[asyncio.Task[None]] = []
    failed = False

    async def one(item: T, place: Place) -> None:
        try:
            await job(item, place)
        finally:
            place.give_back()

    def on_done(task: asyncio.Task[None]) -> None:
        nonlocal failed
        if not task.cancelled() and task.exception() is not None and not failed:
            failed = True
            places.release()  # wake the feeder if it waits for a place: it stops, gather raises

    try:
        for item in items:
            await places.acquire()
            if failed:
                break
            task = asyncio.create_task(one(item, Place(places)))
            task.add_done_callback(on_done)
            jobs.append(task)
        await asyncio.gather(*jobs)
    except BaseException:
        # One job's error (a refused key, Ctrl-C) ends the run: stop the others cleanly.
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        raise
