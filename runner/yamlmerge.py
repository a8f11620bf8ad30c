"""YAML's `<<` merge keys for a builder of parser events: a mapping takes the keys of the
mappings it merges that it lacks. A merge source named by an anchor is built once and
memoised: merged keys deduplicate, so a chain of merges of merges (a "merge bomb") stays
linear; what a merge adds is still counted against the budget of values."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.diagnostics import JsonPath
from runner.yamlanchors import (
    MERGES_ITSELF,
    AliasEvent,
    Anchors,
    Event,
    MappingStartEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    mark_of,
)
from runner.yamldoc import Document, Mark, UnreadableDocument

MAX_DEPTH = 64
MAX_VALUES = 500_000  # after alias expansion: stops "billion laughs" documents


class Merges(Anchors):
    """Merge keys, on top of anchors; the builder supplies how mappings are read."""

    def __init__(self, doc: Document, next_event: Callable[[], Event]) -> None:
        super().__init__(doc, next_event)
        self.values = 0
        # Whether the text values of mappings get marks too; merge sources always keep theirs,
        # which are placed under each mapping that merges them.
        self.all_marks = True
        self.marks: dict[JsonPath, Mark] = {}  # swapped while a merge source is built
        self.key_marks: dict[JsonPath, Mark] = {}
        self.merge_memo: dict[str, MergeSource] = {}

    @abstractmethod
    def mapping(self, path: JsonPath, depth: int) -> dict[str, Any]: ...

    @abstractmethod
    def count(self, event: Event) -> None: ...

    @abstractmethod
    def problem(self, mark: Mark, path: JsonPath, message: str, hint: str = "") -> None: ...

    @abstractmethod
    def skip(self, event: Event, path: JsonPath, depth: int) -> None: ...

    def over_budget(self, mark: Mark) -> UnreadableDocument:
        return self.fail(
            mark,
            f"more than {MAX_VALUES:,} values after expanding aliases and merges (an alias bomb?)",
            hint="a manifest this large should be split",
        )

    def merge_sources(self, event: Event, path: JsonPath, depth: int, sources: list[MergeSource]) -> None:
        """The mappings a `<<` value names: a mapping, or a list of them, written or aliased."""
        if type(event) is AliasEvent:
            anchor = self.anchor(event, MERGES_ITSELF)
            if type(self.tape[anchor.start]) is SequenceStartEvent:
                self.replay(event.anchor, lambda _: self.merge_items(path, depth, sources))
                return
        elif type(event) is SequenceStartEvent:
            if event.anchor is not None and not self.replaying:
                self.anchored(event, lambda _: self.merge_items(path, depth, sources))
            else:
                self.merge_items(path, depth, sources)
            return
        self.merge_item(event, path, depth, sources)

    def merge_items(self, path: JsonPath, depth: int, sources: list[MergeSource]) -> None:
        while type(event := self.next_event()) is not SequenceEndEvent:
            self.merge_item(event, path, depth, sources)

    def merge_item(self, event: Event, path: JsonPath, depth: int, sources: list[MergeSource]) -> None:
        self.count(event)
        if depth >= MAX_DEPTH:
            # A source is read one level deeper than the mapping merging it, and not through
            # the builder's value check: `{<<: {<<: ...}}` 3,000 deep overflowed the stack.
            raise self.fail(mark_of(event), f"nested deeper than {MAX_DEPTH} levels")
        if type(event) is AliasEvent:
            anchor = self.anchor(event, MERGES_ITSELF)
            if type(self.tape[anchor.start]) is not MappingStartEvent:
                self.problem(anchor.mark, path, "'<<' merges only mappings", "point '<<' at a mapping anchor")
                return
            memo = self.merge_memo.get(event.anchor)
            if memo is None:
                memo = self.replay(event.anchor, lambda _: self.merge_source(path, depth))
                self.merge_memo[event.anchor] = memo
            elif depth + 1 + memo.height > MAX_DEPTH:
                # Built once where it was first merged; merged deeper, its values are deeper
                # too: a chain of anchors, each merged deeper than the last, nested thousands
                # of levels and overflowed the stack of whatever read the data next. The bound
                # is the one a first build meets (merge_source).
                raise self.fail(mark_of(event), f"nested deeper than {MAX_DEPTH} levels")
            sources.append(memo)
        elif type(event) is MappingStartEvent:
            if event.anchor is not None and not self.replaying:
                sources.append(self.anchored(event, lambda _: self.merge_source(path, depth)))
            else:
                sources.append(self.merge_source(path, depth))
        else:
            self.problem(mark_of(event), path, "'<<' merges only mappings", "point '<<' at a mapping anchor")
            self.skip(event, path, depth)

    def merge_source(self, path: JsonPath, depth: int) -> MergeSource:
        """Build a mapping to merge (its start event read), keeping its positions apart so
        they can be placed under each mapping that merges it."""
        outer = self.marks, self.key_marks, self.all_marks
        self.marks, self.key_marks, self.all_marks = {}, {}, True
        try:
            # One level deeper than the mapping merging it, as written: `{<<: {<<: ...}}`
            # nests no data, but each level is a recursion of this builder.
            data = self.mapping(path, depth + 1)
            marks, key_marks = self.marks, self.key_marks
        finally:
            self.marks, self.key_marks, self.all_marks = outer
        n = len(path)
        by_key: dict[str, list[tuple[JsonPath, Mark]]] = {k: [] for k in data}
        for p, mark in marks.items():
            by_key[str(p[n])].append((p[n + 1 :], mark))
        first_keys = {str(p[n]): m for p, m in key_marks.items() if len(p) == n + 1}
        return MergeSource(data, by_key, first_keys, max((len(p) - n for p in marks), default=0))

    def merge_into(self, out: dict[str, Any], merged: MergeSource, path: JsonPath) -> None:
        """Add the keys of a `<<` source that `out` lacks: explicit keys win, and earlier
        sources win over later ones."""
        for key, val in merged.data.items():
            if key in out:
                continue
            out[key] = val
            marks = merged.marks[key]
            self.values += len(marks)
            if self.values > MAX_VALUES:
                raise self.over_budget(merged.key_marks[key])
            if not self.all_marks:
                # Placed when asked (see Document): copying a position per merged value for
                # each mapping merging a large source was half the memory of a merge bomb.
                continue
            kpath = (*path, key)
            self.key_marks[kpath] = merged.key_marks[key]
            for suffix, mark in marks:
                self.marks[(*kpath, *suffix)] = mark


@dataclass
class MergeSource:
    """A built `<<` source: its keys and values, and the positions under each key."""

    data: dict[str, Any]
    marks: dict[str, list[tuple[JsonPath, Mark]]]
    key_marks: dict[str, Mark]
    height: int  # levels its deepest value adds below the mapping merging it
