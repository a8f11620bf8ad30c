"""YAML anchors for a builder of parser events: an anchored value's events are kept on a
tape while it is read, and each alias to it replays them, with the same positions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from yaml import events

from runner.yamldoc import Document, Mark, UnreadableDocument

# Parser events, typed loosely: PyYAML's stubs give each event kind only some of the
# attributes the parser sets on it (an anchor, a tag, a position that is never None).
Event = Any
AliasEvent: Any = events.AliasEvent
DocumentEndEvent: Any = events.DocumentEndEvent
MappingEndEvent: Any = events.MappingEndEvent
MappingStartEvent: Any = events.MappingStartEvent
ScalarEvent: Any = events.ScalarEvent
SequenceEndEvent: Any = events.SequenceEndEvent
SequenceStartEvent: Any = events.SequenceStartEvent
StreamEndEvent: Any = events.StreamEndEvent
T = TypeVar("T")
MERGES_ITSELF = "a '<<' merge refers to the mapping it is part of (recursive anchor)"
ALIASES_ITSELF = "an alias refers to itself (recursive anchor)"
new_mark = tuple.__new__  # Mark(...) without its Python-level __new__: one is made per value


def mark_of(event: Event) -> Mark:
    start = event.start_mark
    return new_mark(Mark, (start.line + 1, start.column + 1))


@dataclass
class _Anchor:
    start: int  # the tape index of the anchored value's first event
    end: int  # one past its last event; -1 until the value has been read
    mark: Mark


class Anchors:
    """The anchors of one document and the event source that keeps and replays them."""

    def __init__(self, doc: Document, next_event: Callable[[], Event]) -> None:
        self.doc = doc
        self.from_parser = next_event
        self.next_event = next_event  # the parser, its recorder, or a replayed tape
        self.tape: list[Event] = []
        self.recording = 0  # anchored values being read: their events go on the tape
        self.replaying = 0  # aliases being expanded: their anchors are known already
        self.anchors: dict[str, _Anchor] = {}
        self.open: set[str] = set()  # anchored values being read or expanded: an alias to one recurses

    def fail(self, mark: Mark, message: str, hint: str = "") -> UnreadableDocument:
        return UnreadableDocument(self.doc.path, mark.line, mark.col, message, hint)

    def anchor(self, alias: Event, recursive: str) -> _Anchor:
        """The anchor an alias names; with `recursive`, an error if its value is still being read."""
        anchor = self.anchors.get(alias.anchor)
        if anchor is None:
            raise self.fail(
                mark_of(alias),
                f"YAML syntax error: alias '*{alias.anchor}' names no anchor defined before it",
                "define the anchor (&name) before its first use",
            )
        if recursive and alias.anchor in self.open:
            if recursive == MERGES_ITSELF and type(self.tape[anchor.start]) is not MappingStartEvent:
                # `<<: &l [*l]`, or a list holding the merging mapping: no mapping merges itself
                recursive = ALIASES_ITSELF
            hint = "merge a mapping that does not contain this one" if recursive == MERGES_ITSELF else ""
            raise self.fail(anchor.mark, recursive, hint)
        return anchor

    def anchored(self, event: Event, build: Callable[[Event], T]) -> T:
        """Build an anchored value while putting its events on the tape for its aliases."""
        name = event.anchor
        first = self.anchors.get(name)
        if first is not None:
            raise self.fail(
                mark_of(event),
                f"YAML syntax error: anchor '&{name}' is defined twice"
                f" (first at line {first.mark.line}:{first.mark.col})",
                "give each anchor its own name",
            )
        if not self.recording:  # else the recorder has put it on the tape already
            self.tape.append(event)
            self.next_event = self.record
        anchor = self.anchors[name] = _Anchor(len(self.tape) - 1, -1, mark_of(event))
        self.recording += 1
        self.open.add(name)
        built = build(event)
        self.open.discard(name)
        self.recording -= 1
        anchor.end = len(self.tape)
        if not self.recording:
            self.next_event = self.from_parser
        return built

    def record(self) -> Event:
        event = self.from_parser()
        # Nothing reads where an event ends; kept on the tape, that position was a quarter
        # of the memory of a large anchored value.
        event.end_mark = None
        self.tape.append(event)
        return event

    def replay(self, name: str, build: Callable[[Event], T]) -> T:
        anchor = self.anchors[name]
        outer = self.next_event
        events = iter(self.tape[anchor.start : anchor.end])
        self.next_event = events.__next__
        self.replaying += 1
        self.open.add(name)
        try:
            return build(next(events))
        finally:
            self.open.discard(name)
            self.replaying -= 1
            self.next_event = outer
