"""Building large plain data (plans, ledgers) without pauses of the cyclic garbage collector.

Tasks and ledger records hold no reference cycles, so reference counting frees them; but the
collector, triggered by every few hundred new containers, scans every container built so far
again and again. So it is off while a plan of 100,000 tasks or a ledger of 100,000 records is
built, and what was built is then frozen (gc.freeze): moved out of the collector's sight in
one step instead of being scanned by the collections that would catch up right after (~0.3 s
for a 100,000-record ledger) and by every full collection of a long run. Reference counting
still frees it. `thaw()` at the end of a command hands it back (a process running many
commands, like the tests, would otherwise never collect cycles among them).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bulk_build() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def thaw() -> None:
    gc.unfreeze()
