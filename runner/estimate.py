"""What submitting tasks would cost, by the rules the run's budget uses (runner/spend.py):
each task at the highest price its size class has shown in the ledger, a class never priced
at the highest price known, else the API page's example of 100 a task."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runner.plan import Task
from runner.spend import fallback_price, known_prices, size_class


def credits_per_task(records: Iterable[Mapping[str, Any]]) -> float:
    """The price assumed for a size class the ledger has never seen priced (the highest known)."""
    return fallback_price(known_prices(dict(r) for r in records))


def estimate_credits(tasks: Sequence[Task], records: Mapping[str, Mapping[str, Any]]) -> float:
    """Credits a run would spend submitting `tasks`, given the ledger's records."""
    prices = known_prices(dict(r) for r in records.values())
    fallback = fallback_price(prices)
    return sum(prices.get(size_class(t.params), fallback) for t in tasks)
