"""Single-function checks for the two shapes most values of a manifest have: an object of
known keys (each prompt) and a bounded text with a pattern (each prompt's id and text).

runner/schemafast.py compiles a schema keyword by keyword, one function per keyword; for the
20,000 strings and 10,000 prompt objects of a 10,000-prompt manifest those calls were most of
the schema check's time. Here the keywords of such a schema are tested in one function, each
with the meaning schemafast gives it (jsonschema's), so the verdict is the same; anything
else in the schema (another keyword, a type other than the one) is left to schemafast.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]
Compile = Callable[[Any], Check]

_TEXT = frozenset({"type", "pattern", "minLength", "maxLength"})
_OBJECT = frozenset({"type", "required", "properties", "additionalProperties"})


def fused_check(asserting: dict[str, Any], compile_schema: Compile) -> Check | None:
    """One function for a schema whose asserting keywords are `asserting`, or None when they
    are not one of the shapes fused here."""
    kind = asserting.get("type")
    if kind == "string" and _TEXT.issuperset(asserting):
        return _text(asserting)
    if kind == "object" and _OBJECT.issuperset(asserting):
        return _object(asserting, compile_schema)
    return None


def _length(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"length bound {value!r}")
    return value


def _text(schema: dict[str, Any]) -> Check | None:
    try:
        shortest = _length(schema.get("minLength"), 0)
        longest = _length(schema.get("maxLength"), math.inf)
    except ValueError:
        return None  # schemafast decides what to do with a bound it cannot read
    if math.isnan(shortest) or math.isnan(longest):
        return None  # jsonschema's `len(x) < nan` passes, where `nan <= len(x)` would fail
    pattern = schema.get("pattern")
    if pattern is None:
        return lambda x: isinstance(x, str) and shortest <= len(x) <= longest
    search = re.compile(pattern).search  # jsonschema: re.search(pattern, instance)
    return lambda x: isinstance(x, str) and shortest <= len(x) <= longest and search(x) is not None


def _object(schema: dict[str, Any], compile_schema: Compile) -> Check | None:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    subs = {k: compile_schema(v) for k, v in properties.items()}
    needed = tuple(required)
    other = compile_schema(schema.get("additionalProperties", True))

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return False
        for k in needed:
            if k not in x:
                return False
        get = subs.get
        for k, v in x.items():
            sub = get(k)
            if sub is None:
                if not other(v):
                    return False
            elif not sub(v):
                return False
        return True

    return check
