"""Task-level diff of two sets of manifests: which tasks appear and disappear, which prompts
changed text or size (old id -> new id), and what a run would spend. Ids ignore formatting,
key order, comments and file layout, so a reformat-only change is no change."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.estimate import estimate_credits
from runner.ids import ManifestHasher
from runner.ledger import Record
from runner.manifest import Manifest
from runner.plan import Task, expand

Key = tuple[str, str]  # (manifest, prompt_id)


@dataclass
class Side:
    label: str
    tasks: list[Task]
    texts: dict[Key, str]  # prompt text per prompt
    slots: dict[str, int]  # out_task_id -> position of its size in the prompt's size list


def side(label: str, manifests: Iterable[Manifest]) -> Side:
    manifests = list(manifests)
    texts: dict[Key, str] = {}
    slots: dict[str, int] = {}
    for m in manifests:
        hasher = ManifestHasher(m.name)
        for p in m.prompts:
            texts[(m.name, p.id)] = p.text
            for j, choice in enumerate(p.sizes):
                for out_task_id in hasher.ids(p.id, p.text, choice.params, p.repeat):
                    slots[out_task_id] = j
    return Side(label, expand(manifests), texts, slots)


@dataclass
class Change:
    """A prompt in both sides whose text or sizes changed, with its tasks paired old -> new."""

    manifest: str
    prompt_id: str
    old_text: str
    new_text: str
    pairs: list[tuple[Task, Task]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "prompt_id": self.prompt_id,
            "old_text": self.old_text,
            "new_text": self.new_text,
            "text_changed": self.old_text != self.new_text,
            "tasks": [
                {"old": o.out_task_id, "new": n.out_task_id, "old_size": o.size, "new_size": n.size}
                for o, n in self.pairs
            ],
        }


@dataclass
class Diff:
    old_label: str
    new_label: str
    added: list[Task]
    removed: list[Task]
    changed: list[Change]
    unchanged: int
    spend_tasks: list[Task]  # added tasks the ledger does not hold yet: what a run submits
    credits: float

    @property
    def empty(self) -> bool:
        return not self.added and not self.removed

    @property
    def pixels(self) -> int:
        return sum(t.pixels[0] * t.pixels[1] for t in self.spend_tasks)

    def paired_ids(self) -> set[str]:
        return {t.out_task_id for c in self.changed for pair in c.pairs for t in pair}


def diff(old: Side, new: Side, records: Mapping[str, Record]) -> Diff:
    old_ids = {t.out_task_id for t in old.tasks}
    new_ids = {t.out_task_id for t in new.tasks}
    added = [t for t in new.tasks if t.out_task_id not in old_ids]
    removed = [t for t in old.tasks if t.out_task_id not in new_ids]
    changed = _pair(old, new, added, removed)
    spend = [t for t in added if t.out_task_id not in records]
    return Diff(
        old.label,
        new.label,
        added,
        removed,
        changed,
        len(old_ids & new_ids),
        spend,
        estimate_credits(spend, records),
    )


def _pair(old: Side, new: Side, added: Sequence[Task], removed: Sequence[Task]) -> list[Change]:
    """Pair the gone and new tasks of each prompt in both sides: same size and repeat first
    (the text changed), then same size slot and repeat (the size in that slot changed)."""
    gone: dict[Key, list[Task]] = defaultdict(list)
    came: dict[Key, list[Task]] = defaultdict(list)
    for t in removed:
        gone[(t.manifest, t.prompt_id)].append(t)
    for t in added:
        came[(t.manifest, t.prompt_id)].append(t)
    changes = []
    for key in sorted(set(gone) & set(came)):
        change = Change(key[0], key[1], old.texts[key], new.texts[key])
        olds, news = list(gone[key]), list(came[key])
        for by_slot in (False, True):
            by_key = {_pairing_key(t, old, by_slot): t for t in olds}
            for n in list(news):
                o = by_key.pop(_pairing_key(n, new, by_slot), None)
                if o is not None:
                    change.pairs.append((o, n))
                    olds.remove(o)
                    news.remove(n)
        if change.pairs:
            change.pairs.sort(key=lambda pair: (pair[1].size, pair[1].repeat_index))
            changes.append(change)
    return changes


def _pairing_key(task: Task, where: Side, by_slot: bool) -> tuple[Any, int]:
    return (where.slots[task.out_task_id] if by_slot else task.size, task.repeat_index)
