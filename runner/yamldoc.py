"""What loading YAML gives back: the data, where every value came from, and the error for a
file that cannot be read as a document at all."""

from __future__ import annotations

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
