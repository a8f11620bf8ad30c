"""Admission of API requests: how many may be in flight and how fast they may start.

The service slowing us down (429) is not a failure: the gate halves both the concurrency and
the request rate (at most once per second, since the 429s of requests already in flight say
the same thing) and pauses every admission for the server's Retry-After; each success then
adds a little back (additive increase, multiplicative decrease, as TCP does). Requests wait
here, in front of httpx, never in its connection pool, so what waits can be counted and
reordered by whoever owns the gate.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

MIN_RATE = 0.2  # requests a second: the floor a run of 429s can push the rate down to
CUT_WINDOW = 1.0  # seconds: one cut per window, however many 429s arrive in it
RATE_STEP = 0.5  # requests a second added per second of successes


class AdaptiveGate:
    def __init__(
        self,
        concurrency: int,
        rate: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.max_limit = max(1, concurrency)
        self.limit = float(self.max_limit)
        self.rate_cap = rate  # --rate: never exceeded
        self.rate = rate  # the current rate; None: no limit until the service asks for one
        self.clock = clock
        self.sleep = sleep
        self.in_flight = 0
        self.next_start = 0.0
        self.paused_until = 0.0
        self.last_cut = float("-inf")
        self.throttled = 0  # 429s seen
        self._starts: deque[float] = deque()
        # Waiters in arrival order. A freed slot wakes exactly one of them and hands the slot
        # over: waking them all to re-check (a Condition's notify_all) would cost every
        # request time in proportion to the whole batch waiting here.
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _width(self) -> int:
        return max(1, int(self.limit))

    def _hand_over(self) -> None:
        while self._waiters and self.in_flight < self._width():
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped, not removed when it leaves
                self.in_flight += 1
                waiter.set_result(None)

    async def acquire(self) -> None:
        """Wait for a free slot and the next start time allowed by the rate and any pause."""
        if self._waiters or self.in_flight >= self._width():
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # the slot is counted as ours when this returns
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self.in_flight -= 1  # handed a slot, then cancelled: pass it on
                    self._hand_over()
                raise
        else:
            self.in_flight += 1
        now = self.clock()
        start = max(now, self.paused_until, self.next_start)
        if self.rate:
            self.next_start = start + 1.0 / self.rate
        try:
            if start > now:
                await self.sleep(start - now)
        except BaseException:
            await self.release(throttled=False, success=False)
            raise
        now = self.clock()
        self._starts.append(now)
        while now - self._starts[0] > 2.0:
            self._starts.popleft()

    async def release(
        self, *, throttled: bool, retry_after: float | None = None, success: bool = True
    ) -> None:
        """Give the slot back, saying whether the answer was a 429 (and its Retry-After)."""
        self.in_flight -= 1
        now = self.clock()
        if throttled:
            self._throttle(now, retry_after)
        elif success:
            self.limit = min(float(self.max_limit), self.limit + 1.0 / self.limit)
            if self.rate is not None:
                self.rate += RATE_STEP / self.rate
                if self.rate_cap is not None:
                    self.rate = min(self.rate, self.rate_cap)
        self._hand_over()

    def note_throttle(self, retry_after: float | None) -> None:
        """A 429 learnt after the slot was given back (e.g. inside an HTTP 200 envelope)."""
        self._throttle(self.clock(), retry_after)

    def _throttle(self, now: float, retry_after: float | None) -> None:
        self.throttled += 1
        if retry_after:
            self.paused_until = max(self.paused_until, now + retry_after)
        if now - self.last_cut < CUT_WINDOW:
            return
        self.last_cut = now
        self.limit = max(1.0, self.limit / 2)
        measured = len(self._starts) / 2.0  # what we were sending when told to slow down
        current = self.rate if self.rate is not None else max(measured, 2 * MIN_RATE)
        self.rate = max(MIN_RATE, current / 2)
        self.next_start = max(self.next_start, self.paused_until)
