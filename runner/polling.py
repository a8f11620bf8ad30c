"""Wait for a submitted task to end: query it until it is completed, failed, `lost` (denied
long enough, see runner/lost.py) or past --task-timeout. When to ask is runner/pollschedule.py's
business: a task this run has just submitted is first asked when most of its size class were
done by then, the others after --poll-interval; then a bounded backoff."""

from __future__ import annotations

import asyncio
import time

from runner.client import Kind
from runner.estimate import size_class
from runner.ledger import COMPLETED, FAILED_STATES, TIMED_OUT, Record
from runner.lost import LOST_DENIALS, denial_wait, denied_long_enough
from runner.outcome import submitted_at, timeout_message
from runner.pollschedule import PollSchedule
from runner.records import merge_answer
from runner.runcontext import RunContext


class Poller:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.schedule = PollSchedule(ctx.opts.poll_interval)

    async def poll(self, record: Record) -> Record:
        cls = size_class(record["params"])
        # When this run's submit of it was answered: its age is known, so the schedule applies.
        answered = self.ctx.answered_at.pop(record["submit_id"], None)
        probe = answered is not None and not self.ctx.opts.poll_once and self.schedule.claim_probe(cls)
        try:
            return await self._poll(record, cls, answered, probe)
        finally:
            if probe:
                self.schedule.release_probe(cls)

    async def _poll(self, record: Record, cls: str, answered: float | None, probe: bool) -> Record:
        ctx = self.ctx
        opts = ctx.opts
        loop = asyncio.get_running_loop()
        deadline = submitted_at(record) + opts.task_timeout
        was = record["status"]
        queries = 0
        waits = 0  # waits on the schedule (denials have their own)
        denials: list[float] = []  # when the service said it does not know the task
        while record["status"] != COMPLETED and record["status"] not in FAILED_STATES:
            if queries and time.time() >= deadline:
                # Still paid and maybe still running: never resubmitted; the next run asks first.
                error = timeout_message(opts.task_timeout, record["status"])
                record = {**record, "status": TIMED_OUT, "error": error}
                ctx.ledger.put(record)
                break
            if denials and not opts.poll_once:
                wait = denial_wait(opts.lost_after, len(denials), time.monotonic() - denials[0])
                await asyncio.sleep(max(0.0, min(wait, deadline - time.time())))
            elif probe and answered is not None and self.schedule.probing(cls):
                # Every --poll-interval from the submit's answer, as a fixed-interval client asks.
                waits += 1
                wake = answered + waits * self.schedule.poll_interval
                await asyncio.sleep(max(0.0, min(wake - loop.time(), deadline - time.time())))
            elif not opts.poll_once and not waits and answered is not None:
                await self._first_wait(cls, answered, deadline)
                waits += 1
            elif not opts.poll_once:
                waits += 1
                wait = self.schedule.wait_before(waits) * (0.8 + 0.4 * ctx.rng.random())
                # At least one query per run, whatever the task's age.
                await asyncio.sleep(max(0.0, min(wait, deadline - time.time())) if queries else wait)
            asked_at = loop.time()  # it was unfinished at least this long after its submit
            answer = await ctx.client.query(record["submit_id"], record.get("task_id"))
            queries += 1
            if answer.kind is Kind.OK and answer.data is not None:
                denials.clear()
                record = merge_answer(record, answer.data)
                await ctx.used(record, answer.data)
                ctx.ledger.put(record)
                if record["status"] == COMPLETED:
                    self.schedule.completed(cls, answer.data)
                elif answered is not None and record["status"] not in FAILED_STATES:
                    self.schedule.unfinished(cls, asked_at - answered)
            elif answer.kind is Kind.NOT_FOUND:
                denials.append(time.monotonic())
                if opts.poll_once:
                    ctx.unresolved(
                        record,
                        "the service said it does not know this task; 'imgbatch run' asks again "
                        f"{LOST_DENIALS} times over {opts.lost_after:g} s before calling it lost",
                    )
                    return record
                if denied_long_enough(denials, opts.lost_after):
                    record = {
                        **record,
                        "status": "lost",
                        "error": f"the service denied knowing this task {len(denials)} times over "
                        f"{denials[-1] - denials[0]:.0f} s; --retry-failed asks again, then resubmits it",
                    }
                    ctx.ledger.put(record)
            else:
                ctx.unresolved(record, answer.message, unreachable=answer.unreachable)
                return record
            if opts.poll_once:
                break
        if record["status"] == COMPLETED and was != COMPLETED:
            ctx.charged.add(record["submit_id"])
        return record

    async def _first_wait(self, cls: str, answered: float, deadline: float) -> None:
        """Sleep until the class's first wait has passed since the submit was answered. What
        the class learns meanwhile may make it longer (tasks still unfinished), so it is read
        again on waking; it is bounded (MAX_FIRST_WAIT), and so is this loop."""
        loop = asyncio.get_running_loop()
        late = 1 + 0.1 * self.ctx.rng.random()  # spread the queries, never before the learnt time
        while True:
            left = answered + self.schedule.first_wait(cls) * late - loop.time()
            left = min(left, deadline - time.time())
            if left <= 0:
                return
            await asyncio.sleep(left)
