"""Submit a task at most once: the intent first, then the submit, then finding out.

Every step that spends is recorded before the next one, so a run can be killed at any moment
and the next one resumes without a second submit:
  * before a submit is sent, the task is recorded as `submitting`;
  * a `submitting` task found on resume, or a submit whose answer was lost or unclear, is looked
    up with the query endpoint first, and adopted if the service knows it;
  * only a task the service denies knowing, as often and as long as the lost rules ask
    (runner/lost.py), is submitted (again);
  * each submit asks the spending budget just before it is sent, and its ticket is settled on
    every path (accepted, adopted, refunded, or left counted when the outcome is unknown).
"""

from __future__ import annotations

import asyncio
import time

from runner.client import Answer, Kind
from runner.errors import ConfigError, ServiceError
from runner.ledger import FAILED_STATES, SUBMITTING, Record
from runner.lost import LOST_DENIALS, denial_wait
from runner.plan import Task
from runner.records import new_record, submit_body
from runner.runcontext import RunContext
from runner.spend import Ticket

MAX_SUBMIT_ROUNDS = 3  # submits of one id in one run, each only after the service denied knowing it
# Statuses of records that --retry-failed asks the service about again before resubmitting:
# the service may know them after all (a 404 or a refusal that was not the whole truth).
RECHECK_STATES = frozenset({"lost", "rejected"})


class Submitter:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def needs_submit(self, task: Task) -> bool:
        record = self.ctx.ledger.get(task.out_task_id)
        if record is None:
            return True
        return self.ctx.opts.retry_failed and record["status"] in FAILED_STATES

    async def ensure_submitted(self, task: Task) -> Record | None:
        """The task's record once the service has it (sent, adopted or already known), or None
        when it was held back or its outcome is still unknown."""
        ctx = self.ctx
        record = ctx.ledger.get(task.out_task_id)
        if record is not None and record["status"] == SUBMITTING:
            return await self._resolve(record, task)
        recheck = record is not None and record["status"] in RECHECK_STATES
        if recheck and record is not None and self.needs_submit(task) and ctx.opts.submit:
            found = await self._recheck(record)
            if found is not None:
                return found if found["status"] not in RECHECK_STATES else None  # None: unresolved
        if self.needs_submit(task) and ctx.opts.submit:
            attempt = int(record.get("attempt", 1)) + 1 if record else 1
            return await self._submit(task, attempt)
        return record

    async def _recheck(self, record: Record) -> Record | None:
        """Before paying again for a `lost` or `rejected` task, ask whether the service knows it
        after all: adopted if it does; None (resubmit) only if it says it does not."""
        ctx = self.ctx
        found = await ctx.client.query(record["submit_id"], record.get("task_id"))
        if found.kind is Kind.OK and found.data is not None:
            ctx.summary.adopted += 1
            return await ctx.accept({**record, "error": None}, found.data)
        if found.kind is Kind.NOT_FOUND:
            return None
        ctx.unresolved(record, found.message, unreachable=found.unreachable)
        return record  # unresolved: not resubmitted in this run

    async def _submit(self, task: Task, attempt: int) -> Record | None:
        ctx = self.ctx
        record = new_record(task, attempt)
        ticket = await self._reserve(record)
        if ticket is None:
            return None
        previous = ctx.ledger.get(task.out_task_id)
        ctx.ledger.put(record)  # the intent, before anything is sent
        try:
            return await self._spend(record, task, ticket)
        except (ServiceError, ConfigError) as e:
            if not ctx.client.contacted or isinstance(e, ConfigError):
                # Every connection was refused (or the name did not resolve) before any request
                # reached a server, or the submit route is not there: nothing was done, so the
                # intent must not bind the ledger to a mistyped endpoint that the corrected
                # rerun would then be refused against.
                ctx.ledger.take_back(task.out_task_id, previous)
            raise

    async def _reserve(self, record: Record) -> Ticket | None:
        """Ask the budget, just before sending; a refusal holds the task back."""
        ctx = self.ctx
        if ctx.summary.unreachable:
            return None
        ticket = await ctx.budget.reserve(record["submit_id"], record["params"])
        if ticket is None:
            ctx.summary.held_back += 1
            ctx.summary.refusal = ctx.budget.stopped or (
                f"{ctx.budget.limit_hit} reached: nothing more was submitted"
            )
        return ticket

    async def _spend(self, record: Record, task: Task, ticket: Ticket) -> Record | None:
        """Send a submit; its ticket is settled on every path, so no waiter waits forever."""
        try:
            result = await self._send(record, task, 0, ticket)
        except BaseException:
            await self.ctx.budget.release(ticket)
            raise
        # Left unsettled: no usable answer, so it may have been paid for; it stays counted.
        await self.ctx.budget.unconfirmed(ticket, key_works=False)
        return result

    async def _send(self, record: Record, task: Task, rounds: int, ticket: Ticket) -> Record | None:
        ctx = self.ctx
        answer = await ctx.client.submit(submit_body(task, record["submit_id"]))
        if answer.kind is Kind.OK and answer.data is not None:
            ctx.answered_at[record["submit_id"]] = asyncio.get_running_loop().time()
            ctx.summary.submitted += 1
            ctx.progress.counts.submitted += 1
            stop = await ctx.budget.accepted(ticket, answer.data.get("estimated_credits"))
            if stop:
                ctx.summary.refusal = stop
            return await ctx.accept(record, answer.data)
        # Not a clean acceptance: the task may exist all the same. Ask before anything else.
        return await self._resolve(record, task, after=answer, rounds=rounds, ticket=ticket)

    async def _resolve(
        self,
        record: Record,
        task: Task,
        after: Answer | None = None,
        rounds: int = 0,
        ticket: Ticket | None = None,
    ) -> Record | None:
        """Find out whether a submit of unknown outcome (`after`, or an earlier run's
        `submitting` record when None) took effect: adopt it, record a rejection, or send it
        (again) only when the service denies knowing it."""
        ctx = self.ctx
        if after is not None and after.kind is Kind.UNKNOWN:
            await ctx.client.sleep(ctx.client.retry.delay(1, ctx.rng))  # let a slow submit land
        found = await ctx.client.query(record["submit_id"])
        rejected = after is not None and after.kind is Kind.REJECTED
        never_sent = after is not None and after.unreachable  # every attempt's connection refused
        if found.kind is Kind.NOT_FOUND and ctx.opts.submit and not rejected and not never_sent:
            # The submit may have reached the service: one 404 may be replication lag, so it must
            # be denied as often as an acknowledged task before it is `lost`, or the id would be
            # sent (and paid) twice.
            found = await self._denied_over_span(record) or found
        if found.kind is Kind.OK and found.data is not None:
            ctx.summary.adopted += 1
            if ticket is not None:
                await ctx.budget.adopted(ticket, found.data.get("estimated_credits"))
            return await ctx.accept(record, found.data)
        if found.kind is not Kind.NOT_FOUND:
            ctx.unresolved(record, found.message, unreachable=found.unreachable)
            return None  # a ticket stays counted: the submit may have been paid for
        # The service does not know the task: the submit never took effect.
        if after is not None and after.kind is Kind.REJECTED:
            if ticket is not None:
                await ctx.budget.refund(ticket)
            record = {**record, "status": "rejected", "error": after.message}
            ctx.ledger.put(record)
            return record
        if not ctx.opts.submit:
            return None  # `imgbatch run` submits it
        if rounds >= MAX_SUBMIT_ROUNDS:
            ctx.unresolved(
                record,
                after.message if after else "not submitted",
                unreachable=bool(after and after.unreachable),
            )
            return None
        if ticket is None:
            # A `submitting` record from an earlier run that never reached the service: sending
            # it now is new spending, so it asks the budget like any new task.
            ticket = await self._reserve(record)
            if ticket is None:
                return None
            return await self._spend(record, task, ticket)
        return await self._send(record, task, rounds + 1, ticket)

    async def _denied_over_span(self, record: Record) -> Answer | None:
        """Ask again, backed off, until the service has denied knowing the task LOST_DENIALS
        times over at least lost_after seconds (None), or answers otherwise (that answer)."""
        lost_after = self.ctx.opts.lost_after
        denials = [time.monotonic()]
        while len(denials) < LOST_DENIALS or denials[-1] - denials[0] < lost_after:
            await asyncio.sleep(denial_wait(lost_after, len(denials), time.monotonic() - denials[0]))
            found = await self.ctx.client.query(record["submit_id"])
            if found.kind is not Kind.NOT_FOUND:
                return found
            denials.append(time.monotonic())
        return None
