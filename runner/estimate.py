"""What submitting tasks would cost, by the rules the run's budget (runner/spend.py) uses:
each task at the highest price its size class has shown in the ledger, a class never priced
at the highest price known, else the API page's example of 100 a task; and which tasks a
run would pay for at all."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.ledger import FAILED_STATES, SUBMITTING, Record
from runner.plan import Task

DEFAULT_PRICE = 100.0  # the API page's example estimate; assumed until the service says more


def size_class(params: Mapping[str, Any]) -> str:
    """What the price is assumed to depend on: the tier, or the exact custom size."""
    if "size" in params:
        return f"size {params['size']}"
    return str(params.get("resolution", "1K"))


def number(value: Any) -> float | None:
    """A price as the service gave it, if it is a real number (text like "1000" is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not value >= 0:  # negative, or NaN (an older ledger's): no price
        return None
    try:
        return float(value)
    except OverflowError:  # an integer past any float: counted as what it is, more than any cap
        return math.inf


def known_prices(records: Iterable[Record]) -> dict[str, float]:
    """The highest price each size class has shown in the ledger."""
    prices: dict[str, float] = {}
    for r in records:
        params = r.get("params")
        # A record without params still tells a price, if of no known class: it raises the
        # price assumed for classes never priced.
        cls = size_class(params) if isinstance(params, dict) else "?"
        for key in ("estimated_credits", "credits_used"):
            if key == "credits_used" and r.get("status") != "completed":
                continue  # a running task's credits_used may be 0: not charged yet
            price = number(r.get(key))
            if price is not None:
                prices[cls] = max(prices.get(cls, 0.0), price)
    return prices


def fallback_price(prices: Mapping[str, float]) -> float:
    return max([DEFAULT_PRICE, *prices.values()])


def will_submit(task: Task, record: Record | None, retry_failed: bool) -> bool:
    """Whether this run may pay for the task: it is new, its earlier submit's outcome is
    unknown (`submitting`: if the service does not know it, it is sent again), or it failed
    and --retry-failed asks for it again."""
    if record is None or record["status"] == SUBMITTING:
        return True
    return retry_failed and record["status"] in FAILED_STATES


@dataclass
class Estimate:
    """What a run would send: tasks and credits, per manifest and in all."""

    prices: dict[str, float]
    fallback: float
    tasks: Counter[str] = field(default_factory=Counter)  # per manifest
    credits: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    classes: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    submitting: int = 0  # of the tasks, records an earlier run left `submitting` (outcome unknown)

    @property
    def total_tasks(self) -> int:
        return sum(self.tasks.values())

    @property
    def total_credits(self) -> float:
        return sum(self.credits.values())

    def price(self, cls: str) -> float:
        return self.prices.get(cls, self.fallback)

    def lines(self) -> list[str]:
        out = []
        for manifest in sorted(self.tasks):
            parts = ", ".join(
                f"{n} x {cls} at {self.price(cls):,.0f}{'' if cls in self.prices else ' (assumed)'}"
                for cls, n in sorted(self.classes[manifest].items())
            )
            out.append(
                f"{manifest}: {self.tasks[manifest]} task{'s' if self.tasks[manifest] != 1 else ''}, "
                f"about {self.credits[manifest]:,.0f} "
                f"credits ({parts})"
            )
        return out


def estimate(
    tasks: Sequence[Task],
    records: Mapping[str, Record],
    retry_failed: bool = False,
    prices: dict[str, float] | None = None,
) -> Estimate:
    """prices: known_prices(records.values()), when the caller has them already."""
    prices = known_prices(records.values()) if prices is None else dict(prices)
    est = Estimate(prices, fallback_price(prices))
    # Once per task before the first submit, so kept lean: the credits are added task by
    # task (in this order, as floats add), the counts tallied in one go at the end.
    get, credits, price = records.get, est.credits, est.prices.get
    fallback = est.fallback
    taken: list[tuple[str, str]] = []
    take = taken.append
    for t in tasks:
        record = get(t.out_task_id)
        if record is None or will_submit(t, record, retry_failed):
            if record is not None and record["status"] == SUBMITTING:
                est.submitting += 1
            cls = size_class(t.params)
            take((t.manifest, cls))
            credits[t.manifest] += price(cls, fallback)
    for (manifest, cls), n in Counter(taken).items():
        est.tasks[manifest] += n
        est.classes[manifest][cls] += n
    return est


def credits_per_task(records: Iterable[Mapping[str, Any]]) -> float:
    """The price assumed for a size class the ledger has never seen priced (the highest known)."""
    return fallback_price(known_prices(dict(r) for r in records))


def estimate_credits(tasks: Sequence[Task], records: Mapping[str, Mapping[str, Any]]) -> float:
    """Credits a run would spend submitting `tasks`, given the ledger's records."""
    prices = known_prices(dict(r) for r in records.values())
    fallback = fallback_price(prices)
    return sum(prices.get(size_class(t.params), fallback) for t in tasks)
