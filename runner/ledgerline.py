"""One ledger line: its encoding, and reading it back (decoded, then its fields' types
checked) into a record or a LedgerError naming file:line and what to do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.errors import LedgerError
from runner.jsonnum import exact_float, legacy_constant

# Fields a record may hold, with the types the code relies on (None allowed where listed).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "params": (dict,),
    "pixels": (list,),
    "outputs": (list,),
    "attempt": (int,),
    "repeat_index": (int,),
    "submit_id": (str,),
    "task_id": (str, type(None)),
    "created_at": (str, type(None)),
    "completed_at": (str, type(None)),
    "error": (str, type(None)),
}
_OUTPUT_TYPES: dict[str, tuple[type, ...]] = {
    "url": (str, type(None)),
    "path": (str, type(None)),
    "sha256": (str, type(None)),
    "width": (int, type(None)),
    "height": (int, type(None)),
}
_REFUSE = "imgbatch will not overwrite a ledger it cannot read"


def serialize(record: dict[str, Any]) -> str:
    # allow_nan=False: a ledger line is standard JSON (runner/jsonnum.py); a non-finite float
    # reaching a record is a bug, and fails here instead of writing Infinity into git.
    return json.dumps(record, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def line_decoder(rewritten: list[str] | None = None) -> Callable[[str], Any]:
    """loads_line, faster: msgspec's decoder reads a ledger line in less than half the time
    (100,000 records: ~0.3 s against ~0.7 s). Where it refuses a line (NaN, a number past a
    float, a lone surrogate escape, a syntax error) the standard library decides, so what is
    accepted and every message stay those of json.loads; where it accepts one, it returns the
    same values (integers of any size included, unlike orjson). Lines holding NaN or Infinity
    (not JSON; an older imgbatch wrote them) are appended to `rewritten`."""
    from msgspec import DecodeError
    from msgspec.json import Decoder

    fast = Decoder().decode

    def decode(line: str) -> Any:
        try:
            return fast(line)
        except DecodeError:
            if rewritten is None:
                return loads_line(line)
            return loads_line(line, lambda: rewritten.append(line))

    return decode


def loads_line(line: str, changed: Callable[[], object] | None = None) -> Any:
    """json.loads with numbers kept standard (runner/jsonnum.py): a number past a float is the
    integer it is, and an older imgbatch's Infinity and NaN are read as jsonnum says. Each
    of those (not JSON as written: `1e400` is) calls `changed`."""
    if changed is None:
        return json.loads(line, parse_float=exact_float, parse_constant=legacy_constant)

    def constant(name: str) -> int | None:
        changed()
        return legacy_constant(name)

    return json.loads(line, parse_float=exact_float, parse_constant=constant)


def read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise LedgerError(
            f"{path}: byte {e.start} is not UTF-8",
            hint="restore the ledger from git; imgbatch will not overwrite it",
        ) from None
    except OSError as e:
        raise LedgerError(f"{path}: cannot read: {e.strerror}") from None
    # A record ends at "\n" only: JSON leaves U+2028, U+0085 and the like unescaped in a
    # prompt, and str.splitlines() would cut the record there.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def parse_line(
    line: str, path: Path, lineno: int, decode: Callable[[str], Any] = loads_line
) -> dict[str, Any]:
    try:
        record = decode(line)
    except json.JSONDecodeError as e:
        raise LedgerError(
            f"{path}:{lineno}:{e.colno}: not a ledger record ({e.msg})",
            hint=(
                "fix or remove that line (the journal holds changes not yet in the ledger; it is "
                "not in git)"
                if path.name.endswith(".journal")
                else "fix or restore that line (git checkout)"
            )
            + f"; {_REFUSE}",
        ) from None
    except (ValueError, RecursionError) as e:
        # Valid JSON beyond what Python reads: an integer of over 4,300 digits (json's
        # ValueError), nesting deeper than the interpreter's stack (either decoder).
        why = "nested too deeply" if isinstance(e, RecursionError) else "an integer too long to read"
        raise _not_a_record(path, lineno, why) from None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("out_task_id"), str)
        or not isinstance(record.get("status"), str)
    ):
        raise _not_a_record(path, lineno, "needs out_task_id and status")
    problem = _type_problem(record)
    if problem:
        raise _not_a_record(path, lineno, problem)
    return record


def _not_a_record(path: Path, lineno: int, why: str) -> LedgerError:
    return LedgerError(
        f"{path}:{lineno}:1: not a ledger record ({why})", hint=f"fix or restore that line; {_REFUSE}"
    )


def _type_problem(record: dict[str, Any]) -> str:
    """What is wrong with a known field's type, or ''."""
    for key, types in _FIELD_TYPES.items():
        if key in record and not isinstance(record[key], types):
            return f"{key} is {_mismatch(record[key], types)}"
    for index, out in enumerate(record.get("outputs") or []):
        if not isinstance(out, dict):
            return f"outputs[{index}] is not an object"
        for key, types in _OUTPUT_TYPES.items():
            if key in out and not isinstance(out[key], types):
                return f"outputs[{index}].{key} is {_mismatch(out[key], types)}"
    return ""


def _mismatch(value: Any, types: tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "text", int: "an integer", type(None): "null"}
    return f"{names.get(type(value), type(value).__name__)}, not {' or '.join(names[t] for t in types)}"
