"""When to ask the service about a task: learnt, per size class, from this run's own tasks.

Asking every task on a fixed schedule (--poll-interval, then 1.5x) asks most tasks twice or
more: the first query comes before the task can be done. Tasks of one size class take about
as long as each other, so the run learns how long they take and asks a freshly submitted
task first when most of its class were done by then. Most tasks are then asked once.

  * A class's tasks take what the service says: `completed_at - created_at` of the last
    RECENT tasks that completed. The first query waits for the QUANTILE of those: most tasks
    are done by then, and the rest are asked again soon (below).
  * Before any task of the class has completed, each answer "not finished yet" at age a
    moves the class's first query to 1.5 a: one task's backoff, shared by the class, so a
    batch submitted at once does not ask every task too early.
  * Never sooner than --poll-interval, never later than MAX_FIRST_WAIT (a learnt figure that
    is wrong must not stall a run); a task not done at its first query is asked again after
    --poll-interval, growing 1.5x per query up to POLL_CAP.
  * Until a class has learnt what its tasks take, one of its tasks (its probe) is asked every
    --poll-interval, without growth: the first image of a class is found done as soon as a
    client asking every task at that interval would find it, at the cost of one task's queries.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

POLL_CAP = 30.0  # the longest wait between two queries of one task
MAX_FIRST_WAIT = 120.0  # the longest a learnt first wait may be
RECENT = 32  # completed tasks per class the first wait is learnt from
QUANTILE = 0.75  # the share of those done by the first query
GROWTH = 1.5


@dataclass
class _Class:
    took: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))
    unfinished_at: float = 0.0  # the oldest age at which a task was found not finished
    first_wait: float | None = None  # learnt from `took`; None while nothing completed
    probing: bool = False  # one of its tasks is being asked every --poll-interval


class PollSchedule:
    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval
        self._classes: dict[str, _Class] = {}

    def first_wait(self, cls: str) -> float:
        """How long after its submit was answered to ask about a task of `cls` first."""
        state = self._classes.get(cls)
        if state is None:
            return self.poll_interval
        # Learnt from completions if any; else a backoff past the oldest unfinished age.
        wait = state.first_wait if state.first_wait is not None else GROWTH * state.unfinished_at
        return min(MAX_FIRST_WAIT, max(self.poll_interval, wait))

    def wait_before(self, query: int) -> float:
        """The wait before a task's query number `query` (1, 2, ...) on the plain schedule:
        --poll-interval, growing 1.5x per query up to POLL_CAP (the first is never capped)."""
        if query <= 1:
            return self.poll_interval
        # The exponent is bounded: a task of a long run may be asked thousands of times
        # (--poll-interval 0 asks without waiting), and 1.5 ** 1800 overflows.
        return min(POLL_CAP, self.poll_interval * GROWTH ** min(query - 1, 64))

    def claim_probe(self, cls: str) -> bool:
        """Whether a task of `cls` about to be asked about should be the class's probe: the
        class has learnt nothing yet and no other task is its probe."""
        state = self._classes.setdefault(cls, _Class())
        if state.first_wait is not None or state.probing:
            return False
        state.probing = True
        return True

    def probing(self, cls: str) -> bool:
        """Whether a probe of `cls` should still be asked every --poll-interval."""
        return self._classes[cls].first_wait is None

    def release_probe(self, cls: str) -> None:
        """The probe has ended (done, failed, lost or given up on): another task may be one."""
        self._classes[cls].probing = False

    def unfinished(self, cls: str, age: float) -> None:
        """A task of `cls` was not finished `age` seconds after its submit was answered."""
        state = self._classes.setdefault(cls, _Class())
        state.unfinished_at = max(state.unfinished_at, age)

    def completed(self, cls: str, data: dict[str, Any]) -> None:
        """A task of `cls` completed; learn from the service's timestamps, if it gave them."""
        took = duration(data.get("created_at"), data.get("completed_at"))
        if took is None:
            return
        state = self._classes.setdefault(cls, _Class())
        state.took.append(took)
        ordered = sorted(state.took)
        state.first_wait = ordered[min(len(ordered) - 1, math.ceil(QUANTILE * len(ordered)) - 1)]


def duration(created: Any, completed: Any) -> float | None:
    """Seconds from creation to completion, by the service's own clock; None if unknown."""
    start, end = timestamp(created), timestamp(completed)
    if start is None or end is None or not 0 <= end - start <= 24 * 3600:
        return None
    return end - start


def timestamp(value: Any) -> float | None:
    """An ISO 8601 time as the API page shows it ("2025-12-22T06:03:28.242Z"), or seconds
    since the epoch."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None
