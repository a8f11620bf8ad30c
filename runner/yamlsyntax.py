"""YAML text to a node graph with positions: PyYAML's safe parser (libyaml where present),
no constructors (nothing is ever built from a tag), and syntax errors said the way a
manifest author can act on them."""

from __future__ import annotations

import re

import yaml
from yaml.nodes import Node

from runner.yamlbuild import MAX_VALUES
from runner.yamldoc import UnreadableDocument
from runner.yamlscalar import Core12Resolver

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


def compose(text: str, shown: str) -> Node | None:
    loader = _Loader(text)
    try:
        _count_values(loader, shown)
        loader.dispose()
        loader = _Loader(text)
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
        elif problem == "found undefined alias":
            alias = _token_at(text, line, col, "*")
            problem = f"alias {alias} names no anchor defined before it"
            hint = "define the anchor (&name) before its first use"
        elif "\ufeff" in _line_text(text, line):
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
    except RecursionError:
        raise UnreadableDocument(shown, 1, 1, "nesting is too deep to be a manifest") from None
    finally:
        loader.dispose()


def _count_values(loader: _Loader, shown: str) -> None:
    """Refuse a document with more values than the budget before building its node graph,
    which costs ~800 bytes and ~10 us a value: a 7 MB file of 600,000 keys took 6 s and
    480 MB to compose. Counting parser events streams in constant memory and stops at the
    budget, so any file is answered in well under a second."""
    values = 0
    get_event = loader.get_event
    while True:
        event = get_event()
        kind = type(event)  # a set lookup, not isinstance: this loop runs once per value
        if kind in _VALUE_EVENTS:
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
_VALUE_EVENTS = frozenset(
    {yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent}
)


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
    return _token_at(text, line, col, "&")


def _token_at(text: str, line: int, col: int, sigil: str) -> str:
    """The anchor (`&`) or alias (`*`) written at a position, quoted for a message."""
    m = re.match(re.escape(sigil) + r"[^\s,\[\]{}]+", _line_text(text, line)[col - 1 :])
    return f"'{m.group(0)}'" if m else ("an anchor" if sigil == "&" else "an alias")


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
