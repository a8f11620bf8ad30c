"""What a check found: errors and warnings tied to a place in a file, and their output formats."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    line: int
    col: int
    severity: Severity
    json_path: str
    message: str
    hint: str = ""

    def text(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        path = f" {self.json_path}:" if self.json_path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}: {self.severity}:{path} {self.message}{hint}"

    def github(self) -> str:
        # GitHub workflow command; '%', CR and LF must be escaped in the message.
        body = f"{self.json_path}: {self.message}" if self.json_path else self.message
        if self.hint:
            body += f" ({self.hint})"
        body = body.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        kind = "error" if self.severity == "error" else "warning"
        return f"::{kind} file={self.file},line={self.line},col={self.col}::{body}"

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "path": self.json_path,
            "message": self.message,
            "hint": self.hint,
        }


def format_json_path(path: Sequence[str | int]) -> str:
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("_", "").replace("-", "").isalnum():
            out += f".{part}"
        else:
            out += "[" + json.dumps(part, ensure_ascii=False) + "]"
    return out


def count(diags: Iterable[Diagnostic], severity: Severity) -> int:
    return sum(1 for d in diags if d.severity == severity)
