"""What loading YAML gives back: the data, where every value came from, and the error for a
file that cannot be read as a document at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from runner.diagnostics import Diagnostic, JsonPath, format_json_path
from runner.errors import InputError


class UnreadableDocument(InputError):
    """The file cannot be read as a YAML document at all; carries the position for reports."""

    def __init__(self, file: str, line: int, col: int, message: str, hint: str = "") -> None:
        super().__init__(f"{file}:{line}:{col}: {message}", hint=hint)
        self.diagnostic = Diagnostic(file, line, col, "error", "", message, hint)


class Mark(NamedTuple):
    """A position; a named tuple rather than a frozen dataclass: a document keeps one per
    value, and this is three times quicker to make."""

    line: int  # 1-based
    col: int  # 1-based


Marks = dict[JsonPath, Mark]


@dataclass
class Document:
    """A loaded YAML file: plain JSON-like data plus the position of every value.

    The positions of most values (the text values of mappings and lists) are only worked out
    when first asked for, by reading the text again: a valid manifest rarely needs any, and
    keeping one per value was a fifth of the time to read 10,000 prompts."""

    path: str
    data: Any
    problems: list[Diagnostic] = field(default_factory=list)
    _marks: Marks = field(default_factory=dict, repr=False)
    _key_marks: Marks = field(default_factory=dict, repr=False)
    _complete: Callable[[], tuple[Marks, Marks]] | None = field(default=None, repr=False)

    def set_marks(
        self, marks: Marks, key_marks: Marks, complete: Callable[[], tuple[Marks, Marks]] | None
    ) -> None:
        """The positions known so far, and how to find all of them if those are not all."""
        self._marks, self._key_marks, self._complete = marks, key_marks, complete

    @property
    def marks(self) -> Marks:
        """Where each value starts, by JSON path."""
        self._fill()
        return self._marks

    @property
    def key_marks(self) -> Marks:
        """Where each mapping key starts, by the JSON path of its value."""
        self._fill()
        return self._key_marks

    def _fill(self) -> None:
        if self._complete is not None:
            complete, self._complete = self._complete, None
            self._marks, self._key_marks = complete()

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
