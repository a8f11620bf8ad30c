"""What submitting tasks would cost, by the rule the run itself uses: the highest
`estimated_credits` the ledger has seen, else the API page's example of 100 a task. plan and
diff call only `estimate_credits`, so a finer price model (per size class) slots in here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runner.plan import Task

DEFAULT_CREDITS_PER_TASK = 100.0


def credits_per_task(records: Iterable[Mapping[str, Any]]) -> float:
    seen = [r.get("estimated_credits") for r in records]
    numbers = [float(x) for x in seen if isinstance(x, (int, float)) and not isinstance(x, bool)]
    return max([DEFAULT_CREDITS_PER_TASK, *numbers])


def estimate_credits(tasks: Sequence[Task], records: Mapping[str, Mapping[str, Any]]) -> float:
    """Credits a run would spend submitting `tasks`, given the ledger's records."""
    return len(tasks) * credits_per_task(records.values()) if tasks else 0.0
