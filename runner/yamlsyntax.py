"""YAML text to parser events: PyYAML's safe parser (libyaml where present), no composer
and no constructors (nothing is ever built from a tag), a bound on the values a file may
hold, and syntax errors said the way a manifest author can act on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from runner.yamlbuild import MAX_VALUES
from runner.yamldoc import UnreadableDocument
from runner.yamltext import LINE_BREAK, line_col

if yaml.__with_libyaml__:
    from yaml._yaml import CParser as _Parser

else:  # pragma: no cover - pure-Python fallback when PyYAML lacks libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


@contextmanager
def syntax_errors(text: str, shown: str) -> Iterator[None]:
    """Turn what the parser cannot read in `text` into an UnreadableDocument said the way a
    manifest author can act on it."""
    try:
        yield
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = e.problem or e.context or "invalid YAML"
        hint = _syntax_hint(problem)
        if "\ufeff" in _line_text(text, line):
            # Pasting text from elsewhere leaves invisible marks that libyaml calls bad keys.
            col = _line_text(text, line).index("\ufeff") + 1
            problem = "an invisible byte-order mark (U+FEFF) stands inside the file"
            hint = "delete it; most editors show it as <feff> or not at all"
        elif _is_tab(text, line, col) or "tab" in problem:
            problem = "tabs cannot indent YAML; use spaces"
            hint = "replace the tab at the start of the line with spaces"
        raise UnreadableDocument(shown, line, col, f"YAML syntax error: {problem}", hint) from None
    except yaml.YAMLError as e:  # reader errors: control characters and the like
        line, col = _reader_position(text, e)
        character = getattr(e, "character", None)
        if isinstance(character, str):
            character = ord(character)
        what = (
            f"not readable as YAML: the control character U+{character:04X} is not allowed in YAML"
            if isinstance(character, int)
            else f"not readable as YAML: {_one_line(str(e))}"
        )
        raise UnreadableDocument(shown, line, col, what, "remove control characters from the file") from None
    except UnicodeEncodeError as e:  # libyaml reads UTF-8: a lone surrogate (text not from a file)
        line, col = line_col(text[: e.start])
        what = f"not readable as YAML: U+{ord(text[e.start]):04X} is half of a character (a lone surrogate)"
        raise UnreadableDocument(shown, line, col, what, "save the text as UTF-8") from None


def events(text: str) -> Callable[[], Any]:
    """The parser's next-event function over `text`."""
    return _Parser(text).get_event


def count_values(text: str, shown: str) -> None:
    """Refuse a document that may hold more values than the budget before building it: what
    is built up to the budget would cost ~200 bytes a value. Counting parser events streams in
    constant memory and stops at the budget, so any file is answered in well under a second.
    A file too small to hold that many values is not counted twice."""
    if most_values(text) > MAX_VALUES:
        _count_values(_Parser(text), shown)


def most_values(text: str) -> int:
    """An upper bound on the values of a document: each starts at a line's start or after one
    of `:-?,[{` (anchors and tags aside), and at most three start at one such place
    (`- a: b` starts a list, a mapping and its first key)."""
    return 3 * (1 + sum(text.count(c) for c in _VALUE_PLACES))


# Indicators a value can follow, and the line breaks of YAML 1.1 that libyaml reads.
_VALUE_PLACES = ":-?,[{\n\r\x85\u2028\u2029"


def _count_values(loader: _Parser, shown: str) -> None:
    """Count the value events of a whole document, in constant memory, stopping at the budget:
    a 7 MB file of 600,000 keys is refused in well under a second, where building it first
    took seconds and hundreds of MB."""
    values = 0
    get_event = loader.get_event
    while True:
        event = get_event()
        kind = type(event)  # a set lookup, not isinstance: this loop runs once per value
        if kind in VALUE_EVENTS:
            values += 1
            if values > MAX_VALUES:
                mark = getattr(event, "start_mark", None)  # a value event: never None
                line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                raise UnreadableDocument(
                    shown,
                    line,
                    col,
                    f"more than {MAX_VALUES:,} values",
                    "a manifest this large should be split",
                )
        elif event is None or kind is yaml.StreamEndEvent:
            return


# Both parsers make events of exactly these classes (CollectionStartEvent has only these two).
VALUE_EVENTS = frozenset({yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent})


def _reader_position(text: str, error: yaml.YAMLError) -> tuple[int, int]:
    offset = getattr(error, "position", None)
    if not isinstance(offset, int):
        return 1, 1
    if yaml.__with_libyaml__:
        # libyaml reads the text as UTF-8 and says where in bytes: counted as characters,
        # a control character after an 'ä' was placed past it, or on a line that is not there.
        offset = len(text.encode("utf-8")[:offset].decode("utf-8", "ignore"))
    return line_col(text[:offset])


def _line_text(text: str, line: int) -> str:
    lines = LINE_BREAK.split(text, line)
    return lines[line - 1] if len(lines) >= line else ""


def _is_tab(text: str, line: int, col: int) -> bool:
    """Whether the error sits on a tab in a line's indentation: libyaml then only says
    "found character that cannot start any token"."""
    indent = _line_text(text, line)[:col]
    return "\t" in indent and not indent.strip(" \t")


def _syntax_hint(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return "a value containing ': ' must be quoted"
    if "found character '@'" in problem or "found character '`'" in problem:
        return "quote values that start with '@' or '`'"
    return "fix the YAML at that position"


def _one_line(s: str) -> str:
    return " ".join(s.split())
