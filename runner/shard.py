"""--shard I/N: a stable partition of tasks by out_task_id, so N CI runners split one
regeneration. A task's shard is a hash of its id, not its list position: adding or removing
other tasks never moves it to another shard (and so never to another runner's ledger)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from runner.errors import InputError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARDS = 1000


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as CI matrices count
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def contains(self, out_task_id: str) -> bool:
        return shard_of(out_task_id, self.count) == self.index


def shard_of(out_task_id: str, count: int) -> int:
    """The 1-based shard of an id among `count`: the first 8 bytes of its sha256, modulo."""
    digest = hashlib.sha256(out_task_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(text: str) -> Shard:
    m = _SPEC.match(text)
    if m:
        index, count = int(m.group(1)), int(m.group(2))
        if 1 <= index <= count <= MAX_SHARDS:
            return Shard(index, count)
    raise InputError(
        f"--shard {text!r} is not I/N with 1 <= I <= N <= {MAX_SHARDS}",
        hint="e.g. --shard 2/4 for the second of four runners",
    )
