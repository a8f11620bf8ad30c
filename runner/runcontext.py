"""The state the parts of a run share, and the few things each part does to it.

Submitting, polling and downloading are separate modules, but they learn into one ledger, one
spending budget and one summary: an answer found by any of them is recorded and priced the same
way, so those steps live here, once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from runner.client import ApiClient
from runner.estimate import number
from runner.ledger import COMPLETED, Ledger, Record
from runner.progress import Progress
from runner.records import merge_answer
from runner.runoptions import RunOptions, Summary
from runner.spend import Budget


@dataclass
class RunContext:
    ledger: Ledger
    client: ApiClient
    opts: RunOptions
    progress: Progress
    summary: Summary
    budget: Budget
    rng: random.Random = field(default_factory=random.Random)
    charged: set[str] = field(default_factory=set)  # tasks this run sent, adopted or saw complete
    # When this run's submit of a task was answered (event loop time), until polling starts:
    # the age of a fresh task is known, so the learnt poll schedule applies to it.
    answered_at: dict[str, float] = field(default_factory=dict)

    async def accept(self, record: Record, data: dict[str, Any]) -> Record:
        """Record a task the service acknowledged (a submit answer, or a query adopting it)."""
        record = merge_answer(record, data)
        self.charged.add(record["submit_id"])  # submitted or adopted by this run
        price = number(data.get("estimated_credits"))
        if price is not None:
            self.summary.credits_estimated += price
            self.progress.counts.credits += price
        await self.used(record, data)
        self.ledger.put(record)
        return record

    async def used(self, record: Record, data: dict[str, Any]) -> None:
        # Only a completed task's credits_used is its price: a running one may say 0 (not yet charged).
        if data.get("status") == COMPLETED:
            await self.budget.used(record["submit_id"], data.get("credits_used"), record["params"])

    def unresolved(self, record: Record, message: str, *, unreachable: bool = False) -> None:
        """The service gave no usable answer about the task: it stays as recorded, for a rerun."""
        self.summary.unresolved += 1
        self.summary.unreachable |= unreachable
        self.summary.errors.append(f"{record['out_task_id']}: {message}")

    def warn(self, message: str) -> None:
        self.summary.warnings.append(message)
        self.progress.note(f"warning: {message}")
