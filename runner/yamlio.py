"""The one YAML module: safe, bounded loading that keeps where every value came from.

Scalars are read by the YAML 1.2 core schema, not PyYAML's YAML 1.1 default: there,
an unquoted `16:9` is the base-60 integer 969 and `no` is False, which is never what a
manifest author meant. Nothing is ever constructed from a tag (no Python objects).
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from runner.diagnostics import Diagnostic, JsonPath, format_json_path
from runner.errors import InputError

MAX_BYTES = 32 * 1024 * 1024
MAX_VALUES = 500_000  # after alias expansion: stops "billion laughs" documents
MAX_DEPTH = 64

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class Core12Resolver(BaseResolver):
    """Implicit typing of plain scalars per the YAML 1.2 core schema."""


# `\Z`, not `$`: in Python `$` also matches before a trailing newline.
for _tag, _regexp, _first in [
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)\Z", "tTfF"),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z",
        "-+0123456789.",
    ),
    (_NULL, r"^(?:~|null|Null|NULL|)\Z", ["~", "n", "N", ""]),
]:
    Core12Resolver.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))


if yaml.__with_libyaml__:
    from yaml._yaml import CParser as _Parser

    class _Loader(_Parser, Core12Resolver):
        def __init__(self, stream: str) -> None:
            _Parser.__init__(self, stream)
            Core12Resolver.__init__(self)

else:  # pragma: no cover - pure-Python fallback when PyYAML lacks libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, Composer, Core12Resolver):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            Core12Resolver.__init__(self)


class UnreadableDocument(InputError):
    """The file cannot be read as a YAML document at all; carries the position for reports."""

    def __init__(self, file: str, line: int, col: int, message: str, hint: str = "") -> None:
        super().__init__(f"{file}:{line}:{col}: {message}", hint=hint)
        self.diagnostic = Diagnostic(file, line, col, "error", "", message, hint)


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class Document:
    """A loaded YAML file: plain JSON-like data plus the position of every value."""

    path: str
    data: Any
    marks: dict[JsonPath, Mark] = field(default_factory=dict)
    key_marks: dict[JsonPath, Mark] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)

    def mark_of(self, path: JsonPath, *, key: bool = False) -> Mark:
        """Where the value at `path` (or its key) starts; the nearest enclosing value if unknown."""
        if key and path in self.key_marks:
            return self.key_marks[path]
        p = tuple(path)
        while p not in self.marks and p:
            p = p[:-1]
        return self.marks.get(p, Mark(1, 1))

    def diagnostic(
        self,
        path: JsonPath,
        message: str,
        hint: str = "",
        *,
        severity: str = "error",
        key: bool = False,
    ) -> Diagnostic:
        mark = self.mark_of(path, key=key)
        return Diagnostic(
            self.path,
            mark.line,
            mark.col,
            "error" if severity == "error" else "warning",
            format_json_path(path),
            message,
            hint,
        )


def load_file(path: str | os.PathLike[str], display: str | None = None) -> Document:
    """Read and parse one YAML file. Raises InputError for files that cannot be read at all;
    problems inside a readable document (duplicate keys, odd tags) are in `Document.problems`."""
    shown = display or os.fspath(path)
    raw = _read_bounded(path, shown)
    text = decode(raw, shown)
    return load_text(text, shown)


def _read_bounded(path: str | os.PathLike[str], shown: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UnreadableDocument(shown, 1, 1, "no such file", "check the path") from None
    except IsADirectoryError:
        raise UnreadableDocument(shown, 1, 1, "is a folder, not a file") from None
    except OSError as e:
        raise UnreadableDocument(shown, 1, 1, f"cannot read: {e.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise UnreadableDocument(
            shown,
            1,
            1,
            f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB",
            "split the manifest into several files",
        )
    return raw


def decode(raw: bytes, shown: str) -> str:
    """Bytes to text. UTF-8 (with or without BOM) and BOM-marked UTF-16/32 are understood;
    anything else is refused rather than guessed."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(codec)
            except UnicodeDecodeError as e:
                raise UnreadableDocument(
                    shown,
                    1,
                    1,
                    f"starts with a {codec.upper()} byte-order mark but byte {e.start} "
                    f"is not {codec.upper()}",
                    "save the file as UTF-8",
                ) from None
    if b"\x00" in raw[:4096]:
        raise UnreadableDocument(
            shown,
            1,
            1,
            "binary data or UTF-16 without a byte-order mark, not a YAML text",
            "save the manifest as UTF-8 text",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise UnreadableDocument(
            shown,
            line,
            col,
            f"byte 0x{raw[e.start]:02X} is not UTF-8",
            "save the file as UTF-8 (it looks like Latin-1 or Windows-1252)",
        ) from None


def load_text(text: str, shown: str) -> Document:
    node = _compose(text, shown)
    doc = Document(shown, None)
    if node is None:
        raise UnreadableDocument(shown, 1, 1, "the file is empty", "a manifest starts with 'version: 1'")
    builder = _Builder(doc)
    doc.data = builder.value(node, (), 0)
    return doc


def _compose(text: str, shown: str) -> Node | None:
    loader = _Loader(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = e.problem or e.context or "invalid YAML"
        hint = _syntax_hint(problem)
        if "expected a single document" in str(e):
            problem = "more than one YAML document ('---') in one manifest"
            hint = _syntax_hint(problem)
        elif "duplicate anchor" in str(e) and e.context_mark is not None:
            anchor = _anchor_at(text, line, col)
            first = e.context_mark
            problem = f"anchor {anchor} is defined twice (first at line {first.line + 1}:{first.column + 1})"
            hint = "give each anchor its own name"
        elif _is_tab(text, line, col) or "tab" in problem:
            problem = "tabs cannot indent YAML; use spaces"
            hint = "replace the tab at the start of the line with spaces"
        raise UnreadableDocument(shown, line, col, f"YAML syntax error: {problem}", hint) from None
    except yaml.YAMLError as e:  # reader errors: control characters and the like
        line, col = _reader_position(text, e)
        raise UnreadableDocument(
            shown,
            line,
            col,
            f"not readable as YAML: {_one_line(str(e))}",
            "remove control characters from the file",
        ) from None
    except RecursionError:
        raise UnreadableDocument(shown, 1, 1, "nesting is too deep to be a manifest") from None
    finally:
        loader.dispose()


def _reader_position(text: str, error: yaml.YAMLError) -> tuple[int, int]:
    offset = getattr(error, "position", None)
    if not isinstance(offset, int):
        return 1, 1
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _line_text(text: str, line: int) -> str:
    lines = text.split("\n", line)
    return lines[line - 1] if len(lines) >= line else ""


def _is_tab(text: str, line: int, col: int) -> bool:
    """Whether the error sits on a tab in a line's indentation: libyaml then only says
    "found character that cannot start any token"."""
    indent = _line_text(text, line)[:col]
    return "\t" in indent and not indent.strip(" \t")


def _anchor_at(text: str, line: int, col: int) -> str:
    m = re.match(r"&[^\s,\[\]{}]+", _line_text(text, line)[col - 1 :])
    return f"'{m.group(0)}'" if m else "an anchor"


def _syntax_hint(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return "a value containing ': ' must be quoted"
    if "found character '@'" in problem or "found character '`'" in problem:
        return "quote values that start with '@' or '`'"
    if "more than one YAML document" in problem:
        return "put each manifest in its own file"
    return "fix the YAML at that position"


def _one_line(s: str) -> str:
    return " ".join(s.split())


def _mark(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a node graph into JSON-like values, recording positions and collecting problems.

    Aliases are expanded (each use counts against MAX_VALUES). A `<<` merge source is built
    once per node and memoised: merged keys deduplicate, so a chain of merges of merges (a
    "merge bomb") stays linear; what a merge adds is still counted against the budget."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.values = 0
        self.active: set[int] = set()  # node ids on the current path: catches recursive aliases
        self.marks = doc.marks  # where positions go; swapped while a merge source is built
        self.key_marks = doc.key_marks
        self.merge_memo: dict[int, _MergeSource] = {}
        self.seen_problems: set[tuple[int, int, str]] = set()
        self.resolver = Core12Resolver()

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
                if node.tag != _SEQ:
                    self.tag_problem(node, path)
                return [self.value(n, (*path, i), depth + 1) for i, n in enumerate(node.value)]
            if isinstance(node, MappingNode):
                if node.tag != _MAP:
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
        self.problem(
            node,
            path,
            f"the tag {_short_tag(node.tag)} is not supported; write the value plainly",
            "imgbatch reads no tags: quote the value if it is text",
        )

    def scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        tag, text = node.tag, node.value
        # The node does not say whether its tag was written or resolved: it was written when
        # it differs from what the plain text resolves to. `!!str` is honoured exactly (the text
        # as written); any other written tag is refused rather than guessed at (PyYAML would read
        # `!!bool yes` as false and `!!null foo` as null).
        if tag == _STR:
            return text
        if self.written_tag(node):
            self.tag_problem(node, path)
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() == "true"
        if tag == _INT:
            if text.startswith(("0o", "0x")):
                return int(text[2:], 8 if text[1] == "o" else 16)
            return int(text, 10)
        number = float(text.lower().replace(".inf", "inf").replace(".nan", "nan"))
        if number != number or number in (float("inf"), float("-inf")):
            self.problem(node, path, f"{text!r} is not a finite number", "quote it if it is text")
            return text
        return number

    def written_tag(self, node: ScalarNode) -> bool:
        """Whether a non-string scalar's tag was written in the file: it differs from what the
        plain text resolves to (the node itself does not say)."""
        if node.style:  # quoted or block text resolves to a string
            return True
        implicit = self.resolver.resolve(ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
        return bool(node.tag != implicit)

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
        if knode.tag != _STR and self.written_tag(knode):
            self.tag_problem(knode, path)
            return None
        if knode.tag == _NULL:
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


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag
