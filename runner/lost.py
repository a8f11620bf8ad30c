"""When a task the service does not know may be called `lost`, or submitted again.

A single "not found" right after a submit may be replication lag, not the truth: a task the
service denies knowing is given up on (or, if its submit never took effect, sent again) only
after it denied knowing it LOST_DENIALS times spread over at least `lost_after` seconds.
Calling a paid task lost too early would send (and pay for) it twice.
"""

from __future__ import annotations

LOST_DENIALS = 3
LOST_AFTER = 60.0
FIRST_DENIAL_WAIT = 1.0  # then doubled: most 404s right after a submit are replication lag


def denial_wait(lost_after: float, denials: int, elapsed: float) -> float:
    """The wait after the n-th denial, `elapsed` seconds after the first: 1 s, 2 s, 4 s, ...
    so a replication delay costs seconds, cut short where the denials reach lost_after (the
    span `lost` needs, with at least LOST_DENIALS of them) and no later."""
    return float(min(FIRST_DENIAL_WAIT * 2 ** (denials - 1), max(0.0, lost_after - elapsed)))


def denied_long_enough(denials: list[float], lost_after: float) -> bool:
    """Whether denials (monotonic times) are enough, in number and span, to give a task up."""
    return len(denials) >= LOST_DENIALS and denials[-1] - denials[0] >= lost_after
