"""Parser events to JSON-like values with the position of each: aliases expanded and `<<`
merges applied within bounds on size, depth and recursion, so hostile documents (alias and
merge bombs, self-referencing anchors) are refused quickly instead of exhausting memory.

Values are built straight from the parser's events, with no node graph in between: a node
graph costs a Python object and two positions per value before anything is built, and
building from it walked every value a second time (together 2.5 times the time of this one
pass). An anchored value's events are kept on a tape, and each alias replays them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.diagnostics import Diagnostic, JsonPath, format_json_path
from runner.yamlanchors import (
    ALIASES_ITSELF,
    AliasEvent,
    DocumentEndEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    mark_of,
)
from runner.yamldoc import Document, Mark, UnreadableDocument
from runner.yamlmerge import MAX_DEPTH, MAX_VALUES, Merges, MergeSource
from runner.yamlscalar import FIRST_CHARS, MAP, SEQ, key_problem, scalar_value, tag_problem

__all__ = ["MAX_DEPTH", "MAX_VALUES", "Builder", "NeedsAllMarks"]
_ANY_TAG = (None, "!")  # no tag, or the non-specific one: the kind of node decides
# `<<` merges when plain and untagged (or tagged as what it is); `! <<` and `!!str <<` are
# the text "<<", as `!` and `!!str` make text everywhere else.
_MERGE_TAGS = (None, "tag:yaml.org,2002:merge")


class NeedsAllMarks(Exception):
    """Raised by a builder without all marks that found something only they can report."""


def _plain_text(event: Event) -> bool:
    """Whether an untagged scalar reads as its text: quoted or block, or plain and starting
    with a character no number, boolean or null can start with."""
    value = event.value
    return not event.implicit[0] or bool(value and value[0] not in FIRST_CHARS)


def _plain_value(event: Event) -> bool:
    """Whether an untagged scalar reads as its text or, plain and empty, as null (`a:` in
    `{a, b, c}`): its value is then `value if value or not implicit[0] else None`."""
    value = event.value
    return not event.implicit[0] or not value or value[0] not in FIRST_CHARS


class Builder(Merges):
    """Turns one document's events into JSON-like values, recording positions and
    collecting problems. Aliases are expanded (each use counts against MAX_VALUES)."""

    def __init__(self, doc: Document, next_event: Callable[[], Event], *, all_marks: bool = True) -> None:
        super().__init__(doc, next_event)
        self.all_marks = all_marks  # without: the text values of mappings get none (see Document)
        self.seen_problems: set[tuple[int, int, str]] = set()
        self.muted = 0  # inside a value that is skipped: its problems are not reported

    def document(self) -> Any:
        """The one document of the stream; an empty stream is an error."""
        self.next_event()  # the stream's start
        start = self.next_event()
        if type(start) is StreamEndEvent:
            raise UnreadableDocument(
                self.doc.path, 1, 1, "the file is empty", "a manifest starts with 'version: 1'"
            )
        data = self.value(self.next_event(), (), 0)
        end = self.next_event()
        assert type(end) is DocumentEndEvent
        after = self.next_event()
        if type(after) is not StreamEndEvent:
            raise self.fail(
                mark_of(after),
                "YAML syntax error: more than one YAML document ('---') in one manifest",
                "put each manifest in its own file",
            )
        return data

    def count(self, event: Event) -> None:
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.over_budget(mark_of(event))

    def problem(self, mark: Mark, path: JsonPath, message: str, hint: str = "") -> None:
        # An anchored value used many times would report the same fault at each use.
        if self.muted or (mark.line, mark.col, message) in self.seen_problems:
            return
        self.seen_problems.add((mark.line, mark.col, message))
        self.doc.problems.append(
            Diagnostic(self.doc.path, mark.line, mark.col, "error", format_json_path(path), message, hint)
        )

    def value(self, event: Event, path: JsonPath, depth: int) -> Any:
        if type(event) is AliasEvent:
            if self.muted:  # a skipped value: nothing to read past, nothing to expand
                self.anchor(event, "")
                return None
            self.anchor(event, ALIASES_ITSELF)
            return self.replay(event.anchor, lambda first: self.value(first, path, depth))
        if event.anchor is not None and not self.replaying:
            return self.anchored(event, lambda first: self.node(first, path, depth))
        return self.node(event, path, depth)

    def node(self, event: Event, path: JsonPath, depth: int) -> Any:
        self.count(event)
        if depth > MAX_DEPTH:
            raise self.fail(mark_of(event), f"nested deeper than {MAX_DEPTH} levels")
        mark = self.marks[path] = mark_of(event)
        kind = type(event)
        if kind is ScalarEvent:
            value, problem = scalar_value(event)
            if problem is not None:
                self.problem(mark, path, *problem)
            return value
        if kind is SequenceStartEvent:
            if event.tag not in _ANY_TAG and event.tag != SEQ:
                self.problem(mark, path, *tag_problem(event.tag))
            return self.sequence(path, depth)
        assert kind is MappingStartEvent
        if event.tag not in _ANY_TAG and event.tag != MAP:
            self.problem(mark, path, *tag_problem(event.tag))
        return self.mapping(path, depth)

    def sequence(self, path: JsonPath, depth: int) -> list[Any]:
        items: list[Any] = []
        while type(event := self.next_event()) is not SequenceEndEvent:
            if (
                not self.all_marks
                and type(event) is ScalarEvent
                and event.anchor is None
                and event.tag is None
                and _plain_value(event)
            ):
                # Placed only when asked, as the text values of mappings are: a position per
                # item of `[a, a, ...]` was most of the memory of a file refused at the budget.
                self.values += 1
                if self.values > MAX_VALUES or depth >= MAX_DEPTH:
                    self.value(event, (*path, len(items)), depth + 1)  # raises
                value = event.value
                items.append(value if value or not event.implicit[0] else None)
                continue
            items.append(self.value(event, (*path, len(items)), depth + 1))
        return items

    def mapping(self, path: JsonPath, depth: int) -> dict[str, Any]:
        explicit: dict[str, Any] = {}
        sources: list[MergeSource] = []
        while type(kev := self.next_event()) is not MappingEndEvent:
            # Plain text keys and values are most of a manifest: they are recognised, counted
            # and placed here, without the calls the general case makes.
            if type(kev) is ScalarEvent and kev.anchor is None and kev.tag is None and _plain_text(kev):
                written = kev
                problem = None
            else:
                written = self.key_event(kev, path, depth)
                if written is None:
                    self.skip(self.next_event(), path, depth)
                    continue
                problem = key_problem(written)
            # JSON keys are strings: take the key exactly as typed (`2024:` is the key "2024").
            key = written.value
            if key == "<<" and not written.style and written.tag in _MERGE_TAGS:
                if self.muted:
                    self.skip(self.next_event(), path, depth)
                else:
                    self.merge_sources(self.next_event(), path, depth, sources)
                continue
            if problem is not None:
                self.problem(mark_of(written), path, *problem)
                self.skip(self.next_event(), path, depth)
                continue
            # A key's position is where it stands, also for one written as an alias (`*k :`):
            # its anchor (`&k`) may be anywhere, even a value.
            if key in explicit:
                if not self.all_marks:
                    raise NeedsAllMarks  # the message names the first one's line
                kpath = (*path, key)
                key_mark = mark_of(kev)
                self.problem(
                    key_mark,
                    kpath,
                    f"key {key!r} appears twice (first at line {self.key_marks[kpath].line})",
                    "delete one of them: YAML keeps only the last, silently",
                )
                self.skip(self.next_event(), kpath, depth)
                continue
            vev = self.next_event()
            if type(vev) is ScalarEvent and vev.anchor is None and vev.tag is None and _plain_value(vev):
                self.values += 1
                if self.values > MAX_VALUES or depth >= MAX_DEPTH:
                    self.value(vev, (*path, key), depth + 1)  # raises
                if self.all_marks:
                    kpath = (*path, key)
                    self.key_marks[kpath] = mark_of(kev)
                    self.marks[kpath] = mark_of(vev)
                value = vev.value
                explicit[key] = value if value or not vev.implicit[0] else None
                continue
            kpath = (*path, key)
            self.key_marks[kpath] = mark_of(kev)
            explicit[key] = self.value(vev, kpath, depth + 1)
        for source in sources:
            self.merge_into(explicit, source, path)
        return explicit

    def key_event(self, event: Event, path: JsonPath, depth: int) -> Event | None:
        """The scalar a key is written as (through its alias, if any); None, with a problem,
        for a key that is a list or mapping."""
        if type(event) is AliasEvent:
            anchor = self.anchor(event, "")
            written = self.tape[anchor.start]
            if type(written) is ScalarEvent:
                return written
            self.problem(anchor.mark, path, "a key must be a plain value, not a list or mapping")
            return None
        if type(event) is ScalarEvent:
            if event.anchor is not None and not self.replaying:
                self.anchored(event, lambda first: None)
            return event
        self.problem(mark_of(event), path, "a key must be a plain value, not a list or mapping")
        self.skip(event, path, depth)
        return None

    def skip(self, event: Event, path: JsonPath, depth: int) -> None:
        """Read past a value that is not kept (under a refused key), still registering its
        anchors and refusing what cannot be read."""
        outer = self.marks, self.key_marks
        self.marks, self.key_marks = {}, {}
        self.muted += 1
        try:
            self.value(event, path, depth + 1)
        finally:
            self.muted -= 1
            self.marks, self.key_marks = outer
