"""A node graph to JSON-like values with the position of each: aliases expanded and `<<`
merges applied within bounds on size, depth and recursion, so hostile documents (alias and
merge bombs, self-referencing anchors) are refused quickly instead of exhausting memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.diagnostics import Diagnostic, JsonPath, format_json_path
from runner.yamldoc import Document, Mark, UnreadableDocument
from runner.yamlscalar import MAP, NULL, SEQ, STR, scalar_value, tag_problem, written_tag

MAX_VALUES = 500_000  # after alias expansion: stops "billion laughs" documents
MAX_DEPTH = 64


def _mark(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class Builder:
    """Turns a node graph into JSON-like values, recording positions and collecting problems.

    Aliases are expanded (each use counts against MAX_VALUES). A `<<` merge source is built
    once per node and memoised: merged keys deduplicate, so a chain of merges of merges (a
    "merge bomb") stays linear; what a merge adds is still counted against the budget."""

    def __init__(self, doc: Document, text: str) -> None:
        self.doc = doc
        self.text = text  # the source, for what the nodes do not keep
        self.values = 0
        self.active: set[int] = set()  # node ids on the current path: catches recursive aliases
        self.marks = doc.marks  # where positions go; swapped while a merge source is built
        self.key_marks = doc.key_marks
        self.merge_memo: dict[int, _MergeSource] = {}
        self.seen_problems: set[tuple[int, int, str]] = set()

    def fail(self, node: Node, message: str, hint: str = "") -> UnreadableDocument:
        m = _mark(node)
        return UnreadableDocument(self.doc.path, m.line, m.col, message, hint)

    def count(self, node: Node, n: int = 1) -> None:
        self.values += n
        if self.values > MAX_VALUES:
            raise self.fail(
                node,
                f"more than {MAX_VALUES:,} values after expanding aliases and merges (an alias bomb?)",
                hint="a manifest this large should be split",
            )

    def value(self, node: Node, path: JsonPath, depth: int) -> Any:
        self.count(node)
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
        if id(node) in self.active:
            raise self.fail(node, "an alias refers to itself (recursive anchor)")
        self.marks[path] = _mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != SEQ:
                    self.tag_problem(node, path)
                return [self.value(n, (*path, i), depth + 1) for i, n in enumerate(node.value)]
            if isinstance(node, MappingNode):
                if node.tag != MAP:
                    self.tag_problem(node, path)
                return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))
        raise self.fail(node, "unsupported YAML node")  # pragma: no cover

    def problem(self, node: Node, path: JsonPath, message: str, hint: str = "") -> None:
        m = _mark(node)
        # An anchored value used many times would report the same fault at each use.
        if (m.line, m.col, message) in self.seen_problems:
            return
        self.seen_problems.add((m.line, m.col, message))
        self.doc.problems.append(
            Diagnostic(self.doc.path, m.line, m.col, "error", format_json_path(path), message, hint)
        )

    def tag_problem(self, node: Node, path: JsonPath) -> None:
        self.problem(node, path, *tag_problem(node.tag))

    def scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        value, problem = scalar_value(node, self.text)
        if problem is not None:
            self.problem(node, path, *problem)
        return value

    def mapping(self, node: MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        explicit: dict[str, Any] = {}
        first_marks: dict[str, Mark] = {}
        sources: list[tuple[Node, Node]] = []
        for knode, vnode in node.value:
            if isinstance(knode, ScalarNode) and knode.value == "<<" and not knode.style:
                sources.append((knode, vnode))
                continue
            key = self.key(knode, path)
            if key is None:
                continue
            kpath = (*path, key)
            if key in explicit:
                self.problem(
                    knode,
                    kpath,
                    f"key {key!r} appears twice (first at line {first_marks[key].line})",
                    "delete one of them: YAML keeps only the last, silently",
                )
                continue
            first_marks[key] = _mark(knode)
            self.key_marks[kpath] = first_marks[key]
            if vnode.tag == STR and depth < MAX_DEPTH and type(vnode) is ScalarNode:
                # Text values are most of a manifest: what value() and scalar() do for one
                # (count it, note where it is, take it as written), without their calls.
                self.values += 1
                if self.values > MAX_VALUES:
                    self.count(vnode, 0)  # raises: the budget is spent
                start = vnode.start_mark
                self.marks[kpath] = Mark(start.line + 1, start.column + 1)
                explicit[key] = vnode.value
                continue
            explicit[key] = self.value(vnode, kpath, depth + 1)
        for knode, vnode in sources:
            self.merge_into(explicit, knode, vnode, path, depth)
        return explicit

    def merge_into(self, out: dict[str, Any], knode: Node, vnode: Node, path: JsonPath, depth: int) -> None:
        """Add the keys of each `<<` source that `out` lacks: explicit keys win, and earlier
        sources win over later ones."""
        items = vnode.value if isinstance(vnode, SequenceNode) else [vnode]
        for src in items:
            self.count(src)
            if not isinstance(src, MappingNode):
                self.problem(src, path, "'<<' merges only mappings", "point '<<' at a mapping anchor")
                continue
            if id(src) in self.active:
                raise self.fail(
                    src,
                    "a '<<' merge refers to the mapping it is part of (recursive anchor)",
                    "merge a mapping that does not contain this one",
                )
            merged = self.merge_source(src, path, depth)
            for key, val in merged.data.items():
                if key in out:
                    continue
                out[key] = val
                kpath = (*path, key)
                self.key_marks[kpath] = merged.key_marks[key]
                marks = merged.marks[key]
                self.count(src, len(marks))
                for suffix, mark in marks:
                    self.marks[(*kpath, *suffix)] = mark

    def merge_source(self, src: MappingNode, path: JsonPath, depth: int) -> _MergeSource:
        memo = self.merge_memo.get(id(src))
        if memo is not None:
            return memo
        outer_marks, outer_key_marks = self.marks, self.key_marks
        self.marks, self.key_marks = {}, {}
        self.active.add(id(src))
        try:
            data = self.mapping(src, path, depth + 1)
            marks, key_marks = self.marks, self.key_marks
        finally:
            self.marks, self.key_marks = outer_marks, outer_key_marks
            self.active.discard(id(src))
        n = len(path)
        by_key: dict[str, list[tuple[JsonPath, Mark]]] = {k: [] for k in data}
        for p, mark in marks.items():
            by_key[str(p[n])].append((p[n + 1 :], mark))
        memo = _MergeSource(data, by_key, {str(p[n]): m for p, m in key_marks.items() if len(p) == n + 1})
        self.merge_memo[id(src)] = memo
        return memo

    def key(self, knode: Node, path: JsonPath) -> str | None:
        if not isinstance(knode, ScalarNode):
            self.problem(knode, path, "a key must be a plain value, not a list or mapping")
            return None
        if knode.tag != STR and written_tag(knode):
            self.tag_problem(knode, path)
            return None
        if knode.tag == NULL:
            self.problem(knode, path, "empty key", "write the key name before ':'")
            return None
        # JSON keys are strings: take the key exactly as typed (`2024:` is the key "2024").
        return str(knode.value)


@dataclass
class _MergeSource:
    """A built `<<` source: its keys and values, and the positions under each key."""

    data: dict[str, Any]
    marks: dict[str, list[tuple[JsonPath, Mark]]]
    key_marks: dict[str, Mark]
