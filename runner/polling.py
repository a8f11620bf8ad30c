"""Wait for a submitted task to end: query it on a backed-off schedule until it is completed,
failed, `lost` (denied long enough, see runner/lost.py) or past --task-timeout."""

from __future__ import annotations

import asyncio
import time

from runner.client import Kind
from runner.ledger import COMPLETED, FAILED_STATES, TIMED_OUT, Record
from runner.lost import LOST_DENIALS, denial_wait, denied_long_enough
from runner.outcome import submitted_at, timeout_message
from runner.records import merge_answer
from runner.runcontext import RunContext

POLL_CAP = 30.0


class Poller:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    async def poll(self, record: Record) -> Record:
        ctx = self.ctx
        opts = ctx.opts
        interval = opts.poll_interval
        deadline = submitted_at(record) + opts.task_timeout
        was = record["status"]
        asked = False
        denials: list[float] = []  # when the service said it does not know the task
        while record["status"] != COMPLETED and record["status"] not in FAILED_STATES:
            if asked and time.time() >= deadline:
                # Still paid and maybe still running: never resubmitted; the next run asks first.
                error = timeout_message(opts.task_timeout, record["status"])
                record = {**record, "status": TIMED_OUT, "error": error}
                ctx.ledger.put(record)
                break
            if denials and not opts.poll_once:
                wait = denial_wait(opts.lost_after, len(denials), time.monotonic() - denials[0])
                await asyncio.sleep(max(0.0, min(wait, deadline - time.time())))
            elif not opts.poll_once:
                wait = interval * (0.8 + 0.4 * ctx.rng.random())
                await asyncio.sleep(max(0.0, min(wait, deadline - time.time())) if asked else wait)
                interval = min(POLL_CAP, interval * 1.5)
            answer = await ctx.client.query(record["submit_id"], record.get("task_id"))
            asked = True
            if answer.kind is Kind.OK and answer.data is not None:
                denials.clear()
                record = merge_answer(record, answer.data)
                await ctx.used(record, answer.data)
                ctx.ledger.put(record)
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
