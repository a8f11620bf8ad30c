"""The spending guard: one budget that every submit asks just before it is sent.

Rules (the README repeats them):
  * A task's price is the highest the service has shown for its size class (the tier, or the
    exact custom size): `estimated_credits` of submit answers and `credits_used` of queries,
    from this run and from the ledger. A class nobody has priced yet is assumed to cost the
    highest price known for any class, or DEFAULT_PRICE.
  * A class's first submit goes alone, and so does the next one after an answer raised its
    price: while a price is unproven, at most one submit of that class is in flight. The very
    first submit of a run goes alone too (it proves the key before anything else is sent).
  * A submit is sent only if the credits committed by this run (the reservation of every
    task sent, corrected to the service's estimate when it answers and to `credits_used` when
    that is higher) plus its price stay within --max-credits, and the tasks sent within
    --max-tasks. No more than --concurrency submits are reserved at once, and when an answer
    shows a higher price, the other submits of its class still in flight are counted at it
    too. So the cap can be overshot only by what was already sent when the service showed a
    higher cost: submits in flight when a higher price appeared, and tasks whose credits_used
    comes out above their estimate.
  * An answer whose price is not a number (or is missing) stops all further submits.
The prices known before a run, and what it would cost, are runner/estimate.py's.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.estimate import fallback_price, number, size_class


@dataclass
class _Class:
    price: float | None = None  # the highest price the service has shown; None: never priced
    proven: bool = False  # the latest answer did not raise the price
    in_flight: int = 0
    # Tasks of this run adopted without a price (their submit's answer was lost): the class's
    # next submit waits for their credits_used, or for them to end without one.
    unpriced: set[str] = field(default_factory=set)


@dataclass
class Ticket:
    """A reservation: one task allowed to be sent at `price`."""

    submit_id: str
    cls: str
    price: float
    settled: bool = False


class Budget:
    def __init__(
        self,
        max_tasks: int | None,
        max_credits: float | None,
        prices: Mapping[str, float] | None = None,
        max_in_flight: int = 8,
    ) -> None:
        self.max_tasks = max_tasks
        # Reserving only as many as can be sent at once keeps "asked just before sending"
        # true: a task waiting for a connection has not reserved at a price that may be stale.
        self.max_in_flight = max(1, max_in_flight)
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self.max_credits = max_credits
        self.classes: defaultdict[str, _Class] = defaultdict(_Class)
        for cls, price in (prices or {}).items():
            self.classes[cls].price = price  # known, but re-proven by this run's first answer
        self.sent = 0
        self.committed = 0.0  # credits this run has committed: reservations and answers
        self.costs: dict[str, float] = {}  # what each task of this run is counted at, by submit_id
        self.in_flight = 0
        self.open: dict[str, Ticket] = {}  # reserved and not yet answered, by submit_id
        self.key_proven = False
        self.stopped = ""  # why nothing more may be submitted
        self.limit_hit = ""  # which limit held tasks back
        self._changed = asyncio.Condition()

    def _price(self, cls: str) -> float:
        own = self.classes[cls].price
        if own is not None:
            return own
        return fallback_price({k: c.price for k, c in self.classes.items() if c.price is not None})

    async def reserve(self, submit_id: str, params: Mapping[str, Any]) -> Ticket | None:
        """Wait until the task may be sent; None when a limit or a stop forbids it."""
        if self.stopped:
            return None
        # A slot first (FIFO, one waiter woken per freed slot): only slot holders wait on the
        # condition below, so a settle wakes at most max_in_flight of them, not the whole batch.
        await self._slots.acquire()
        try:
            ticket = await self._reserve(submit_id, size_class(params))
        except BaseException:
            self._slots.release()
            raise
        if ticket is None:
            self._slots.release()
        return ticket

    async def _reserve(self, submit_id: str, cls: str) -> Ticket | None:
        async with self._changed:
            while True:
                if self.stopped:
                    return None
                state = self.classes[cls]
                unproven = not state.proven and state.in_flight
                if (not self.key_proven and self.in_flight) or unproven or state.unpriced:
                    await self._changed.wait()  # an unproven price or key: one at a time
                    continue
                price = self._price(cls)
                if self.max_tasks is not None and self.sent + 1 > self.max_tasks:
                    self.limit_hit = f"--max-tasks {self.max_tasks}"
                    return None
                if self.max_credits is not None and self.committed + price > self.max_credits:
                    self.limit_hit = f"--max-credits {self.max_credits:g}"
                    return None
                self.sent += 1
                self.committed += price
                self.costs[submit_id] = price
                self.in_flight += 1
                state.in_flight += 1
                ticket = self.open[submit_id] = Ticket(submit_id, cls, price)
                return ticket

    def _settle(self, ticket: Ticket) -> None:
        ticket.settled = True
        self.open.pop(ticket.submit_id, None)
        self.in_flight -= 1
        self.classes[ticket.cls].in_flight -= 1
        self._slots.release()
        self._changed.notify_all()

    async def accepted(self, ticket: Ticket, estimated: Any) -> str:
        """The service accepted the submit and said its price. Returns why submitting must
        stop ('' to go on): a price that is not a number is an unknown price."""
        async with self._changed:
            self.key_proven = True
            price = number(estimated)
            if price is None:
                self.stopped = (
                    f"the service's answer to {ticket.submit_id} gave no usable price "
                    f"(estimated_credits {estimated!r}); nothing more was submitted"
                )
            else:
                # The reservation becomes the service's own estimate, lower or higher, but never
                # below the price its class has shown (a low estimate may be a lie).
                state = self.classes[ticket.cls]
                counted = max(price, state.price or 0.0)
                self.committed += counted - self.costs.get(ticket.submit_id, 0.0)
                self.costs[ticket.submit_id] = counted
                self._learn(ticket.cls, price, ticket.submit_id, ticket.price)
            self._settle(ticket)
            return self.stopped

    def _learn(self, cls: str, price: float, submit_id: str, reserved: float) -> None:
        """A task of `cls` showed `price` (an estimate or credits_used); it was counted at
        `reserved` before."""
        state = self.classes[cls]
        raised = state.price is not None and price > state.price
        state.proven = not raised  # a raise: the class's next submit goes alone again
        stale = max(reserved, state.price or 0.0)
        state.price = price if state.price is None else max(state.price, price)
        if price > stale:
            # Its siblings in flight were counted at the stale price, and so were the first
            # submits of classes never priced (at the assumed price): count them at this one
            # until they answer, so nothing more is sent on their account.
            for other in self.open.values():
                never_priced = self.classes[other.cls].price is None
                if other.submit_id != submit_id and (other.cls == cls or never_priced):
                    self._count(other.submit_id, price)

    async def adopted(self, ticket: Ticket, estimated: Any) -> None:
        """The submit's answer was lost but the service knows the task: it is paid, at its
        estimate if the query gave one; without one its class waits for its credits_used."""
        async with self._changed:
            self.key_proven = True
            price = number(estimated)
            if price is None:
                self.classes[ticket.cls].unpriced.add(ticket.submit_id)
            else:
                self._count(ticket.submit_id, price)
                self._learn(ticket.cls, price, ticket.submit_id, ticket.price)
            if not ticket.settled:
                self._settle(ticket)

    async def finished(self, submit_id: str, params: Mapping[str, Any]) -> None:
        """The task ended (or this run stops following it): nobody waits for its price any more."""
        state = self.classes[size_class(params)]
        if submit_id in state.unpriced:
            async with self._changed:
                state.unpriced.discard(submit_id)
                self._changed.notify_all()

    async def unconfirmed(self, ticket: Ticket, *, key_works: bool) -> None:
        """The submit may have been paid for, at an unknown price: it stays counted at its
        reservation, and its class stays unproven."""
        async with self._changed:
            self.key_proven |= key_works
            if not ticket.settled:
                self._settle(ticket)

    async def refund(self, ticket: Ticket) -> None:
        """The service proved the submit took no effect (refused, and it knows no such task)."""
        async with self._changed:
            self.sent -= 1
            self.committed -= self.costs.pop(ticket.submit_id, ticket.price)
            self._settle(ticket)

    async def release(self, ticket: Ticket) -> None:
        """Settle a ticket an error left open (a refused key, Ctrl-C): it stays counted, and
        the error ends the run, so nobody waiting may submit any more."""
        if not ticket.settled:
            async with self._changed:
                self.stopped = self.stopped or "an error ended the run"
                self._settle(ticket)

    async def used(self, submit_id: str, credits_used: Any, params: Mapping[str, Any]) -> None:
        """The service reported what a task of this run actually cost: a higher price acts
        exactly like a higher estimate (the class unproven, its open siblings recounted)."""
        price = number(credits_used)
        if price is None or submit_id not in self.costs:
            return
        cls = size_class(params)
        async with self._changed:
            before = self.costs[submit_id]
            self._count(submit_id, price)
            self._learn(cls, price, submit_id, before)
            self.classes[cls].unpriced.discard(submit_id)
            self._changed.notify_all()

    def _count(self, submit_id: str, price: float) -> None:
        """Count the task at the higher of what it was counted at and `price`."""
        before = self.costs.get(submit_id, 0.0)
        if price > before:
            self.committed += price - before
            self.costs[submit_id] = price
