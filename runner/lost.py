"""When a task the service does not know may be called `lost`, or submitted again.

A single "not found" right after a submit may be replication lag, not the truth: a task the
service denies knowing is given up on (or, if its submit never took effect, sent again) only
after it denied knowing it LOST_DENIALS times spread over at least `lost_after` seconds.
Calling a paid task lost too early would send (and pay for) it twice.
"""

from __future__ import annotations

LOST_DENIALS = 3
LOST_AFTER = 60.0


def denial_wait(lost_after: float, denials: int) -> float:
    """The wait after the n-th denial: the waits span lost_after (1/3, then 2/3 of it)."""
    return float(lost_after * 2 ** (denials - 1) / (2 ** (LOST_DENIALS - 1) - 1))


def denied_long_enough(denials: list[float], lost_after: float) -> bool:
    """Whether denials (monotonic times) are enough, in number and span, to give a task up."""
    return len(denials) >= LOST_DENIALS and denials[-1] - denials[0] >= lost_after
