"""The run: plan -> guards -> submit what is new -> poll -> download -> ledger.

This module only orchestrates: one job per task, each going through the steps that live in
their own modules, all sharing one RunContext (runner/runcontext.py):
  * runner/submitting.py: submit at most once (intent first; unknown outcomes looked up and
    adopted; only what the service denies knowing is sent again), under the spending budget;
  * runner/polling.py: wait for the task to end;
  * runner/download.py: fetch and verify its images;
  * runner/feed.py starts the jobs in plan order, only as fast as their submits go out.
Every step that spends or learns something is recorded in the ledger before the next step, so
a run can be killed at any moment and the next one resumes without a second submit.
"""

from __future__ import annotations

import asyncio
import contextlib

from runner.client import ApiClient, Kind
from runner.download import Downloader
from runner.errors import GuardRefused
from runner.estimate import Estimate, estimate, known_prices, number
from runner.feed import Place, run_fed
from runner.imagefetch import Verdict
from runner.jsonnum import add
from runner.ledger import COMPLETED, FAILED_STATES, SUBMITTING, TIMED_OUT, Ledger, Record
from runner.outcome import advice, download_advice
from runner.outdir import prepare_out_dir
from runner.plan import Task
from runner.polling import Poller
from runner.progress import Progress
from runner.records import merge_answer
from runner.runcontext import RunContext
from runner.runoptions import DEFAULT_TASK_TIMEOUT, RunOptions, Summary
from runner.spend import Budget
from runner.submitting import Submitter
from runner.verify import file_verified, one_moment

__all__ = ["DEFAULT_TASK_TIMEOUT", "RunOptions", "Runner", "Summary"]


class Runner:
    def __init__(
        self,
        tasks: list[Task],
        ledger: Ledger,
        client: ApiClient,
        options: RunOptions,
        progress: Progress,
        downloader: Downloader,
    ) -> None:
        self.tasks = tasks
        self.ledger = ledger
        self.client = client
        self.downloader = downloader
        self.opts = options
        self.progress = progress
        self.summary = Summary(planned=len(tasks))
        self._prices = known_prices(ledger.records.values())  # one pass over the ledger, for both
        budget = Budget(
            options.max_tasks, options.max_credits, dict(self._prices), max_in_flight=options.concurrency
        )
        self.ctx = RunContext(ledger, client, options, progress, self.summary, budget)
        self.submitter = Submitter(self.ctx)
        self.poller = Poller(self.ctx)

    def check_guards(self) -> Estimate:
        """What this run would send (new tasks, and `submitting` ones the service may not know);
        refuses, sending nothing, past a limit, then asks for confirmation if set up to."""
        tasks = self.tasks if self.opts.submit else []
        est = estimate(tasks, self.ledger.records, self.opts.retry_failed, self._prices)
        limits = []
        if self.opts.max_tasks is not None and est.total_tasks > self.opts.max_tasks:
            limits.append(f"--max-tasks {self.opts.max_tasks}")
        if self.opts.max_credits is not None and est.total_credits > self.opts.max_credits:
            limits.append(f"--max-credits {self.opts.max_credits:g}")
        if limits:
            hint = "raise the limit, or run fewer manifests ('imgbatch plan' lists the tasks)"
            if est.submitting:
                hint = (
                    f"{est.submitting} of them {'was' if est.submitting == 1 else 'were'} left "
                    "submitting by an earlier run (paid or not, the outcome is unknown): 'imgbatch "
                    f"status --refresh' collects those without new spend; else {hint}"
                )
            raise GuardRefused(
                f"this run would submit {est.total_tasks} tasks, about {est.total_credits:,.0f} credits "
                f"({'; '.join(est.lines())}), over {' and '.join(limits)}; nothing was sent",
                hint=hint,
            )
        if est.total_tasks and self.opts.confirm is not None and not self.opts.confirm(est):
            raise GuardRefused("not confirmed; nothing was sent", hint="--yes skips the question")
        return est

    # --- the run ------------------------------------------------------------------------

    async def run(self) -> Summary:
        self.check_guards()
        prepare_out_dir(self.opts.out_dir)
        counts = self.progress.counts
        counts.planned = len(self.tasks)
        work = []
        done: set[str] = set()
        with one_moment():  # a fresh clone's missing images: one folder listing, not a stat each
            for task in self.tasks:
                record = self.ledger.get(task.out_task_id)
                if record is not None and record["status"] == COMPLETED and self._downloaded(record):
                    counts.done += 1
                    done.add(task.out_task_id)
                elif (
                    record is not None
                    and record["status"] in FAILED_STATES
                    and not (self.opts.retry_failed and self.opts.submit)
                ):
                    counts.failed += 1
                else:
                    counts.queued += 1
                    work.append(task)
        if not work:
            # Nothing has happened since that look: its verdicts stand (each image checked once).
            self._finish(done)
            return self.summary
        self.progress.start()
        compactor = asyncio.create_task(self._compact_periodically())
        try:
            # Twice the budget's reservers: the next submits are ready when a slot frees.
            await run_fed(work, self._process, window=2 * self.opts.concurrency)
        finally:
            compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await compactor
            self.ledger.compact()
            self.progress.stop()
        self._finish()
        return self.summary

    def _finish(self, verified: set[str] | None = None) -> None:
        """verified: the tasks whose images were found on disk as recorded just before, when
        nothing was done since; else each completed task's images are checked now."""
        s = self.summary
        s.requests = self.client.requests
        s.throttled = self.client.gate.throttled
        if self.client.wrong_answers:
            self.ctx.warn(
                f"{self.client.wrong_answers} answers were about another task than the one asked "
                "about; none was recorded, each was asked again"
            )
        s.downloads = self.downloader.count
        s.completed = s.failed = s.running = s.unconfirmed = s.not_submitted = 0
        s.timed_out = s.missing_images = 0
        s.credits_used = 0
        done = set()
        for task in self.tasks:
            record = self.ledger.get(task.out_task_id)
            status = record["status"] if record else None
            used = number(record.get("credits_used")) if record else None
            if record is not None and record["submit_id"] in self.ctx.charged and used is not None:
                s.credits_used = add(s.credits_used, record["credits_used"])  # exact past a float
            if status is None:
                s.not_submitted += 1
            elif status == COMPLETED and (
                task.out_task_id in verified if verified is not None else self._downloaded(record)
            ):
                s.completed += 1
                done.add(task.out_task_id)
            elif status == COMPLETED:
                s.missing_images += 1
            elif status in FAILED_STATES:
                s.failed += 1
            elif status == SUBMITTING:
                s.unconfirmed += 1
            elif status == TIMED_OUT:
                s.timed_out += 1
            else:
                s.running += 1
        s.todo = self._todo(done)

    def _todo(self, done: set[str]) -> list[str]:
        """For each planned task that is not completed with its images (`done`): what to do
        about it."""
        said = {}
        for line in self.summary.errors:
            task_id, _, message = line.partition(": ")
            said[task_id] = message
        lines = []
        for task in self.tasks:
            record = self.ledger.get(task.out_task_id)
            line = advice(record, said.get(task.out_task_id), task.out_task_id in done, self.opts.wait)
            if line:
                lines.append(f"{task.out_task_id}: {line}")
        return lines

    async def _compact_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.opts.compact_every)
            self.ledger.compact_if_due()
            self.progress.update()

    async def _process(self, task: Task, place: Place) -> None:
        """One task, start to end: submitted (or found), waited for, downloaded."""
        counts = self.progress.counts
        record: Record | None = None
        try:
            record = await self.submitter.ensure_submitted(task)
            place.give_back()  # submitted (or known): the next task may start submitting
            if record is None or record["status"] == SUBMITTING:
                return
            counts.running += 1
            self.progress.update()
            follow = self.opts.wait or self.opts.poll_once
            if follow and record["status"] not in FAILED_STATES:
                record = await self.poller.poll(record)
            if record["status"] == COMPLETED and follow:
                record = await self._download(record)
            counts.running -= 1
            if record["status"] == COMPLETED and self._downloaded(record):
                counts.done += 1
            elif record["status"] in FAILED_STATES:
                counts.failed += 1
                self.progress.note(f"{record['out_task_id']} {record['status']}: {record.get('error')}")
        finally:
            if record is not None:
                # Lets the budget know the task's price is settled, so its class may send again.
                await self.ctx.budget.finished(record["submit_id"], record["params"])
            counts.queued -= 1
            self.progress.update()

    # --- download -----------------------------------------------------------------------

    def _downloaded(self, record: Record | None) -> bool:
        outputs = (record or {}).get("outputs") or []
        base = self.ledger.path.parent
        return bool(outputs) and all(isinstance(o, dict) and file_verified(o, base) for o in outputs)

    async def _download(self, record: Record) -> Record:
        record, failure = await self.downloader.complete(record, lambda: self._refresh(record))
        record = {**record, "error": download_advice(failure) if failure else None}
        self.ledger.put(record)
        if failure is not None:
            if failure.verdict is Verdict.UNREACHABLE:
                self.summary.download_unreachable += 1
            else:
                self.summary.download_refused += 1
            self.summary.errors.append(f"{record['out_task_id']}: {record['error']}")
            return record
        planned = record.get("pixels")
        for out in record.get("outputs") or []:
            if planned and [out.get("width"), out.get("height")] != list(planned):
                self.ctx.warn(
                    f"{record['out_task_id']}: delivered {out.get('width')}x{out.get('height')}, "
                    f"the plan said {planned[0]}x{planned[1]}"
                )
        return record

    async def _refresh(self, record: Record) -> Record | None:
        """Ask the service for the task again: a completed answer carries fresh output URLs."""
        answer = await self.client.query(record["submit_id"], record.get("task_id"))
        if answer.kind is not Kind.OK or answer.data is None or answer.data.get("status") != COMPLETED:
            return None
        return merge_answer({**record, "outputs": []}, answer.data)
