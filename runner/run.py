"""The run: plan -> guards -> submit what is new -> poll -> download -> ledger.

Every step that spends or learns something is recorded in the ledger before the next step,
so a run can be killed at any moment and the next one resumes without a second submit:
  * before a submit is sent, the task is recorded as `submitting`;
  * a `submitting` task found on resume, or a submit whose answer was lost, is looked up with
    the query endpoint first, and adopted if it exists;
  * only a task the service says it does not know is submitted (again).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.client import Answer, ApiClient, Kind
from runner.download import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_MAX_IMAGE_MB,
    Downloader,
    DownloadOptions,
    Verdict,
    prepare_out_dir,
)
from runner.errors import ConfigError, GuardRefused, ServiceError
from runner.ids import attempt_id
from runner.ledger import COMPLETED, FAILED_STATES, SUBMITTING, TIMED_OUT, UPSTREAM_FAILED, Ledger, Record
from runner.outcome import advice, download_advice, submitted_at, timeout_message
from runner.plan import Task
from runner.progress import Progress
from runner.spend import Budget, Estimate, Ticket, estimate, known_prices, number
from runner.verify import file_verified

DEFAULT_TASK_TIMEOUT = 30 * 60.0
POLL_CAP = 30.0
MAX_SUBMIT_ROUNDS = 3  # submits of one id in one run, each only after the service denied knowing it
# An acknowledged (paid) task is `lost` only after this many denials (404) spread over at least
# RunOptions.lost_after seconds: a single "not found" may be a replication delay.
LOST_DENIALS = 3
LOST_AFTER = 60.0
# Statuses of records that --retry-failed asks the service about again before resubmitting:
# the service may know them after all (a 404 or a refusal that was not the whole truth).
RECHECK_STATES = frozenset({"lost", "rejected"})


@dataclass
class RunOptions:
    out_dir: Path
    concurrency: int = 8
    poll_interval: float = 2.0
    max_tasks: int | None = None
    max_credits: float | None = None
    retry_failed: bool = False
    wait: bool = True
    poll_once: bool = False  # query unfinished tasks once instead of waiting (status --refresh)
    submit: bool = True  # False: only look up and finish what the ledger holds (status --refresh)
    compact_every: float = 5.0
    # Called with what the run would send, before anything is; False stops the run unsent.
    confirm: Callable[[Estimate], bool] | None = None
    task_timeout: float = DEFAULT_TASK_TIMEOUT  # seconds from submission to a terminal status
    lost_after: float = LOST_AFTER  # the denials that make a task `lost` span at least this
    max_image_mb: float = DEFAULT_MAX_IMAGE_MB
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT

    def download_options(self) -> DownloadOptions:
        return DownloadOptions(max_bytes=int(self.max_image_mb * 1024 * 1024), deadline=self.download_timeout)


@dataclass
class Summary:
    planned: int = 0
    submitted: int = 0
    adopted: int = 0
    completed: int = 0
    failed: int = 0
    running: int = 0
    unconfirmed: int = 0  # recorded as `submitting`: the next run asks the service first
    timed_out: int = 0  # not finished by --task-timeout
    missing_images: int = 0  # completed upstream, but no verified file on disk
    download_unreachable: int = 0  # downloads that failed because the host was unreachable/slow
    download_refused: int = 0  # downloads refused (not an image, damaged, too large, URL dead)
    not_submitted: int = 0
    held_back: int = 0  # stopped by --max-tasks/--max-credits or an unknown price during the run
    refusal: str = ""  # why submitting stopped, when it did
    unresolved: int = 0  # the service gave no usable answer
    unreachable: bool = False
    credits_estimated: float = 0
    credits_used: float = 0
    downloads: int = 0
    requests: int = 0
    throttled: int = 0  # 429 answers: the gate slowed down instead of failing
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)  # one line per planned task not done: what to do

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
        self.rng = random.Random()
        self.charged: set[str] = set()  # tasks this run sent, adopted or saw complete
        self.budget = Budget(
            options.max_tasks,
            options.max_credits,
            known_prices(ledger.records.values()),
            max_in_flight=options.concurrency,
        )

    # --- deciding what to do ------------------------------------------------------------

    def _needs_submit(self, task: Task) -> bool:
        record = self.ledger.get(task.out_task_id)
        if record is None:
            return True
        return self.opts.retry_failed and record["status"] in FAILED_STATES

    def check_guards(self) -> Estimate:
        """What this run would send (new tasks, and `submitting` ones the service may not know);
        refuses, sending nothing, past a limit, then asks for confirmation if set up to."""
        est = estimate(self.tasks if self.opts.submit else [], self.ledger.records, self.opts.retry_failed)
        limits = []
        if self.opts.max_tasks is not None and est.total_tasks > self.opts.max_tasks:
            limits.append(f"--max-tasks {self.opts.max_tasks}")
        if self.opts.max_credits is not None and est.total_credits > self.opts.max_credits:
            limits.append(f"--max-credits {self.opts.max_credits:g}")
        if limits:
            raise GuardRefused(
                f"this run would submit {est.total_tasks} tasks, about {est.total_credits:,.0f} credits "
                f"({'; '.join(est.lines())}), over {' and '.join(limits)}; nothing was sent",
                hint="raise the limit, or run fewer manifests ('imgbatch plan' lists the tasks)",
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
        for task in self.tasks:
            record = self.ledger.get(task.out_task_id)
            if record is not None and record["status"] == COMPLETED and self._downloaded(record):
                counts.done += 1
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
            self._finish()
            return self.summary
        self.progress.start()
        compactor = asyncio.create_task(self._compact_periodically())
        jobs = [asyncio.create_task(self._process(t)) for t in work]
        try:
            await asyncio.gather(*jobs)
        except BaseException:
            # One job's error (a refused key, Ctrl-C) ends the run: stop the others cleanly,
            # while the client is still open, so nothing is left to fail unobserved.
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            raise
        finally:
            compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await compactor
            self.ledger.compact()
            self.progress.stop()
        self._finish()
        return self.summary

    def _finish(self) -> None:
        s = self.summary
        s.requests = self.client.requests
        s.throttled = self.client.gate.throttled
        if self.client.wrong_answers:
            self._warn(
                f"{self.client.wrong_answers} answers were about another task than the one asked "
                "about; none was recorded, each was asked again"
            )
        s.downloads = self.downloader.count
        s.completed = s.failed = s.running = s.unconfirmed = s.not_submitted = 0
        s.timed_out = s.missing_images = 0
        s.credits_used = 0
        for task in self.tasks:
            record = self.ledger.get(task.out_task_id)
            status = record["status"] if record else None
            used = number(record.get("credits_used")) if record else None
            if record is not None and record["submit_id"] in self.charged and used is not None:
                s.credits_used += used
            if status is None:
                s.not_submitted += 1
            elif status == COMPLETED and self._downloaded(record):
                s.completed += 1
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
        s.todo = self._todo()

    def _todo(self) -> list[str]:
        """For each planned task that is not completed with its images: what to do about it."""
        said = {}
        for line in self.summary.errors:
            task_id, _, message = line.partition(": ")
            said[task_id] = message
        lines = []
        for task in self.tasks:
            record = self.ledger.get(task.out_task_id)
            line = advice(record, said.get(task.out_task_id), self._downloaded(record), self.opts.wait)
            if line:
                lines.append(f"{task.out_task_id}: {line}")
        return lines

    async def _compact_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.opts.compact_every)
            self.ledger.compact_if_due()
            self.progress.update()

    async def _process(self, task: Task) -> None:
        counts = self.progress.counts
        record: Record | None = None
        try:
            record = await self._ensure_submitted(task)
            if record is None or record["status"] == SUBMITTING:
                return
            counts.running += 1
            self.progress.update()
            follow = self.opts.wait or self.opts.poll_once
            if follow and record["status"] not in FAILED_STATES:
                record = await self._poll(record)
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
                await self.budget.finished(record["submit_id"], record["params"])
            counts.queued -= 1
            self.progress.update()

    # --- submit, or find out ------------------------------------------------------------

    async def _ensure_submitted(self, task: Task) -> Record | None:
        record = self.ledger.get(task.out_task_id)
        if record is not None and record["status"] == SUBMITTING:
            return await self._resolve(record, task)
        recheck = record is not None and record["status"] in RECHECK_STATES
        if recheck and record is not None and self._needs_submit(task) and self.opts.submit:
            found = await self._recheck(record)
            if found is not None:
                return found if found["status"] not in RECHECK_STATES else None  # None: unresolved
        if self._needs_submit(task) and self.opts.submit:
            attempt = int(record.get("attempt", 1)) + 1 if record else 1
            return await self._submit(task, attempt)
        return record

    async def _recheck(self, record: Record) -> Record | None:
        """Before paying again for a `lost` or `rejected` task, ask whether the service knows it
        after all: adopted if it does; None (resubmit) only if it says it does not."""
        found = await self.client.query(record["submit_id"], record.get("task_id"))
        if found.kind is Kind.OK and found.data is not None:
            self.summary.adopted += 1
            return await self._accept({**record, "error": None}, found.data)
        if found.kind is Kind.NOT_FOUND:
            return None
        self._unresolved(record, found.message, unreachable=found.unreachable)
        return record  # unresolved: not resubmitted in this run

    async def _submit(self, task: Task, attempt: int) -> Record | None:
        record = _new_record(task, attempt)
        ticket = await self._reserve(record)
        if ticket is None:
            return None
        previous = self.ledger.get(task.out_task_id)
        self.ledger.put(record)  # the intent, before anything is sent
        try:
            return await self._spend(record, task, ticket)
        except (ServiceError, ConfigError) as e:
            if not self.client.contacted or isinstance(e, ConfigError):
                # Every connection was refused (or the name did not resolve) before any request
                # reached a server, or the submit route is not there: nothing was done, so the
                # intent must not bind the ledger to a mistyped endpoint that the corrected
                # rerun would then be refused against.
                self.ledger.take_back(task.out_task_id, previous)
            raise

    async def _reserve(self, record: Record) -> Ticket | None:
        """Ask the budget, just before sending; a refusal holds the task back."""
        if self.summary.unreachable:
            return None
        ticket = await self.budget.reserve(record["submit_id"], record["params"])
        if ticket is None:
            self.summary.held_back += 1
            self.summary.refusal = self.budget.stopped or (
                f"{self.budget.limit_hit} reached: nothing more was submitted"
            )
        return ticket

    async def _spend(self, record: Record, task: Task, ticket: Ticket) -> Record | None:
        """Send a submit; its ticket is settled on every path, so no waiter waits forever."""
        try:
            result = await self._send(record, task, 0, ticket)
        except BaseException:
            await self.budget.release(ticket)
            raise
        # Left unsettled: no usable answer, so it may have been paid for; it stays counted.
        await self.budget.unconfirmed(ticket, key_works=False)
        return result

    async def _send(self, record: Record, task: Task, rounds: int, ticket: Ticket) -> Record | None:
        answer = await self.client.submit(_submit_body(task, record["submit_id"]))
        if answer.kind is Kind.OK and answer.data is not None:
            self.summary.submitted += 1
            self.progress.counts.submitted += 1
            stop = await self.budget.accepted(ticket, answer.data.get("estimated_credits"))
            if stop:
                self.summary.refusal = stop
            return await self._accept(record, answer.data)
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
        if after is not None and after.kind is Kind.UNKNOWN:
            await self.client.sleep(self.client.retry.delay(1, self.rng))  # let a slow submit land
        found = await self.client.query(record["submit_id"])
        rejected = after is not None and after.kind is Kind.REJECTED
        never_sent = after is not None and after.unreachable  # every attempt's connection refused
        if found.kind is Kind.NOT_FOUND and self.opts.submit and not rejected and not never_sent:
            # The submit may have reached the service: one 404 may be replication lag, so it must
            # be denied as often as an acknowledged task before it is `lost`, or the id would be
            # sent (and paid) twice.
            found = await self._denied_over_span(record) or found
        if found.kind is Kind.OK and found.data is not None:
            self.summary.adopted += 1
            if ticket is not None:
                await self.budget.adopted(ticket, found.data.get("estimated_credits"))
            return await self._accept(record, found.data)
        if found.kind is not Kind.NOT_FOUND:
            self._unresolved(record, found.message, unreachable=found.unreachable)
            return None  # a ticket stays counted: the submit may have been paid for
        # The service does not know the task: the submit never took effect.
        if after is not None and after.kind is Kind.REJECTED:
            if ticket is not None:
                await self.budget.refund(ticket)
            record = {**record, "status": "rejected", "error": after.message}
            self.ledger.put(record)
            return record
        if not self.opts.submit:
            return None  # `imgbatch run` submits it
        if rounds >= MAX_SUBMIT_ROUNDS:
            self._unresolved(
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
        denials = [time.monotonic()]
        while len(denials) < LOST_DENIALS or denials[-1] - denials[0] < self.opts.lost_after:
            await asyncio.sleep(denial_wait(self.opts.lost_after, len(denials)))
            found = await self.client.query(record["submit_id"])
            if found.kind is not Kind.NOT_FOUND:
                return found
            denials.append(time.monotonic())
        return None

    def _unresolved(self, record: Record, message: str, *, unreachable: bool = False) -> None:
        self.summary.unresolved += 1
        self.summary.unreachable |= unreachable
        self.summary.errors.append(f"{record['out_task_id']}: {message}")

    async def _accept(self, record: Record, data: dict[str, Any]) -> Record:
        record = _merge_answer(record, data)
        self.charged.add(record["submit_id"])  # submitted or adopted by this run
        price = number(data.get("estimated_credits"))
        if price is not None:
            self.summary.credits_estimated += price
            self.progress.counts.credits += price
        await self._used(record, data)
        self.ledger.put(record)
        return record

    async def _used(self, record: Record, data: dict[str, Any]) -> None:
        # Only a completed task's credits_used is its price: a running one may say 0 (not yet charged).
        if data.get("status") == COMPLETED:
            await self.budget.used(record["submit_id"], data.get("credits_used"), record["params"])

    # --- wait ---------------------------------------------------------------------------

    async def _poll(self, record: Record) -> Record:
        interval = self.opts.poll_interval
        deadline = submitted_at(record) + self.opts.task_timeout
        was = record["status"]
        asked = False
        denials: list[float] = []  # when the service said it does not know the task
        while record["status"] != COMPLETED and record["status"] not in FAILED_STATES:
            if asked and time.time() >= deadline:
                # Still paid and maybe still running: never resubmitted; the next run asks first.
                error = timeout_message(self.opts.task_timeout, record["status"])
                record = {**record, "status": TIMED_OUT, "error": error}
                self.ledger.put(record)
                break
            if denials and not self.opts.poll_once:
                wait = denial_wait(self.opts.lost_after, len(denials))
                await asyncio.sleep(max(0.0, min(wait, deadline - time.time())))
            elif not self.opts.poll_once:
                wait = interval * (0.8 + 0.4 * self.rng.random())
                await asyncio.sleep(max(0.0, min(wait, deadline - time.time())) if asked else wait)
                interval = min(POLL_CAP, interval * 1.5)
            answer = await self.client.query(record["submit_id"], record.get("task_id"))
            asked = True
            if answer.kind is Kind.OK and answer.data is not None:
                denials.clear()
                record = _merge_answer(record, answer.data)
                await self._used(record, answer.data)
                self.ledger.put(record)
            elif answer.kind is Kind.NOT_FOUND:
                denials.append(time.monotonic())
                if self.opts.poll_once:
                    self._unresolved(
                        record,
                        "the service said it does not know this task; 'imgbatch run' asks again "
                        f"{LOST_DENIALS} times over {self.opts.lost_after:g} s before calling it lost",
                    )
                    return record
                if len(denials) >= LOST_DENIALS and denials[-1] - denials[0] >= self.opts.lost_after:
                    record = {
                        **record,
                        "status": "lost",
                        "error": f"the service denied knowing this task {len(denials)} times over "
                        f"{denials[-1] - denials[0]:.0f} s; --retry-failed asks again, then resubmits it",
                    }
                    self.ledger.put(record)
            else:
                self._unresolved(record, answer.message, unreachable=answer.unreachable)
                return record
            if self.opts.poll_once:
                break
        if record["status"] == COMPLETED and was != COMPLETED:
            self.charged.add(record["submit_id"])
        return record

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
                self._warn(
                    f"{record['out_task_id']}: delivered {out.get('width')}x{out.get('height')}, "
                    f"the plan said {planned[0]}x{planned[1]}"
                )
        return record

    async def _refresh(self, record: Record) -> Record | None:
        """Ask the service for the task again: a completed answer carries fresh output URLs."""
        answer = await self.client.query(record["submit_id"], record.get("task_id"))
        if answer.kind is not Kind.OK or answer.data is None or answer.data.get("status") != COMPLETED:
            return None
        return _merge_answer({**record, "outputs": []}, answer.data)

    def _warn(self, message: str) -> None:
        self.summary.warnings.append(message)
        self.progress.note(f"warning: {message}")


def denial_wait(lost_after: float, denials: int) -> float:
    """The wait after the n-th denial: the waits span lost_after (1/3, then 2/3 of it)."""
    return float(lost_after * 2 ** (denials - 1) / (2 ** (LOST_DENIALS - 1) - 1))


def _new_record(task: Task, attempt: int) -> Record:
    return {
        "out_task_id": task.out_task_id,
        "manifest": task.manifest,
        "prompt_id": task.prompt_id,
        "params": task.params,
        "pixels": list(task.pixels),
        "size": task.size,
        "repeat_index": task.repeat_index,
        "status": SUBMITTING,
        "attempt": attempt,
        "submit_id": attempt_id(task.out_task_id, attempt),
        "task_id": None,
        "estimated_credits": None,
        "credits_used": None,
        "created_at": None,
        "completed_at": None,
        "outputs": [],
        "error": None,
        **_passthrough(task),
    }


def _submit_body(task: Task, submit_id: str) -> dict[str, Any]:
    return {"model": "gpt_image_2", "params": task.params, "out_task_id": submit_id, **_passthrough(task)}


def _passthrough(task: Task) -> dict[str, Any]:
    """The optional fields sent upstream as given and kept in the ledger."""
    fields = {"metadata": task.metadata, "callback_url": task.callback_url}
    return {k: v for k, v in fields.items() if v is not None}


def _merge_answer(record: Record, data: dict[str, Any]) -> Record:
    """Fold what the service said into the record; unknown statuses are kept as said."""
    merged = dict(record)
    status = data.get("status")
    merged["status"] = status if isinstance(status, str) and status else "pending"
    for key in ("task_id", "created_at", "completed_at"):
        if data.get(key) is not None:
            merged[key] = data[key]
    for key in ("estimated_credits", "credits_used"):
        if number(data.get(key)) is not None:  # a price that is not a number is no price
            merged[key] = data[key]
    if merged["status"] in UPSTREAM_FAILED:
        merged["error"] = str(data.get("error") or data.get("message") or f"{merged['status']} upstream")
    output = data.get("output")
    if merged["status"] == COMPLETED and isinstance(output, list):
        known = {o.get("url"): o for o in merged.get("outputs") or []}
        merged["outputs"] = [
            known.get(o.get("url"))
            or {"url": o.get("url"), "path": None, "sha256": None, "width": None, "height": None}
            for o in output
            if isinstance(o, dict)
        ]
    return merged
