"""Whether a document is valid against the manifest schema, fast and without jsonschema.

The schema is compiled once into nested Python checks that answer only yes or no, with the
semantics jsonschema gives each keyword (Draft 2020-12, integers that are ints, imgbatch's own
keywords). A valid manifest, the usual case, is then accepted without importing jsonschema
(most of a small plan's start-up) or building its error objects (a fifth of a large plan's
time). Anything else goes to jsonschema, which says what is wrong and where. The schema stays
the only source of truth: a keyword this module does not know makes it give up (every
document then goes to jsonschema), and a test holds both to the same answers.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from runner.schema import (
    KW_PIXEL_AREA,
    KW_PIXEL_TABLE,
    KW_SIZE_SHORTHAND,
    inline_refs,
    load_schema,
    pixel_area_problems,
    size_shorthand_problems,
)
from runner.schemafused import fused_check

Check = Callable[[Any], bool]

# Keywords that assert nothing (with no format checker configured, `format` would be one too,
# but the schema does not use it, so it is left out: unknown means give up).
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "errorMessage",
        "then",  # read with "if"
        "else",
        KW_PIXEL_TABLE,
    }
)

_TYPES: dict[str, Check] = {
    "array": lambda x: isinstance(x, list),
    "boolean": lambda x: isinstance(x, bool),
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),  # as schema.py's checker
    "null": lambda x: x is None,
    "number": lambda x: isinstance(x, numbers.Number) and not isinstance(x, bool),
    "object": lambda x: isinstance(x, dict),
    "string": lambda x: isinstance(x, str),
}


class Unsupported(Exception):
    """The schema uses something this module does not implement."""


@cache
def manifest_check() -> Check | None:
    """The compiled manifest schema, or None when it uses a keyword not compiled here."""
    try:
        return compile_schema(inline_refs(load_schema()))
    except Unsupported:
        return None


def is_valid_manifest(data: Any) -> bool | None:
    """True when jsonschema would find no error in `data`, False when it would find one,
    None when the schema cannot be compiled here (ask jsonschema)."""
    check = manifest_check()
    return None if check is None else check(data)


def compile_schema(schema: Any) -> Check:
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, dict):
        raise Unsupported(repr(schema))
    asserting = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    fused = fused_check(asserting, compile_schema)
    if fused is not None:
        return fused
    checks: list[Check] = []
    for key, value in asserting.items():
        make = _KEYWORDS.get(key)
        if make is None:
            raise Unsupported(key)
        checks.append(make(value, schema))
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    # The type check first: it is what most often fails, and cheapest.
    checks.sort(key=lambda c: not getattr(c, "is_type_check", False))
    all_checks = tuple(checks)

    def check_all(x: Any) -> bool:
        # Loops, not all(generator): these run a few times per value of a manifest.
        for c in all_checks:  # noqa: SIM110
            if not c(x):
                return False
        return True

    return check_all


def _always(x: Any) -> bool:
    return True


def _never(x: Any) -> bool:
    return False


def _same(x: Any, c: Any) -> bool:
    """jsonschema's equality for a scalar `c` of the schema: True is not 1, 1.0 is 1."""
    if x is c:
        return True
    if isinstance(x, str) or isinstance(c, str):
        return bool(x == c)
    if isinstance(x, bool) or isinstance(c, bool):
        return False  # the same bools are the same object, caught above
    return bool(x == c)


def _scalar(value: Any) -> Any:
    if value is not None and not isinstance(value, (str, int, float)):
        raise Unsupported(f"non-scalar const or enum: {value!r}")
    return value


def _type(value: Any, schema: dict[str, Any]) -> Check:
    names = value if isinstance(value, list) else [value]
    try:
        tests = [_TYPES[n] for n in names]
    except (KeyError, TypeError):
        raise Unsupported(f"type {value!r}") from None
    if len(tests) == 1:
        check = tests[0]
    else:

        def check(x: Any) -> bool:
            return any(t(x) for t in tests)

    def type_check(x: Any) -> bool:
        return check(x)

    type_check.is_type_check = True  # type: ignore[attr-defined]
    return type_check


def _const(value: Any, schema: dict[str, Any]) -> Check:
    c = _scalar(value)
    return lambda x: _same(x, c)


def _enum(value: Any, schema: dict[str, Any]) -> Check:
    choices = [_scalar(v) for v in value]
    if all(isinstance(v, str) for v in choices):
        strings = frozenset(choices)
        return lambda x: isinstance(x, str) and x in strings
    return lambda x: any(_same(x, c) for c in choices)


def _pattern(value: Any, schema: dict[str, Any]) -> Check:
    search = re.compile(value).search  # jsonschema: re.search(pattern, instance)
    return lambda x: not isinstance(x, str) or search(x) is not None


def _bound(fails: Callable[[Any, Any], bool], kind: Check) -> Callable[[Any, dict[str, Any]], Check]:
    """A bound as jsonschema tests it: an error when `fails` (so a NaN passes, as there)."""

    def make(value: Any, schema: dict[str, Any]) -> Check:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Unsupported(f"bound {value!r}")
        return lambda x: not kind(x) or not fails(x, value)

    return make


def _required(value: Any, schema: dict[str, Any]) -> Check:
    keys = tuple(value)
    return lambda x: not isinstance(x, dict) or all(k in x for k in keys)


def _properties(value: Any, schema: dict[str, Any]) -> Check:
    subs = {k: compile_schema(v) for k, v in value.items()}

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        if len(x) < len(subs):
            for k, v in x.items():
                sub = subs.get(k)
                if sub is not None and not sub(v):
                    return False
            return True
        for k, sub in subs.items():  # noqa: SIM110
            if k in x and not sub(x[k]):
                return False
        return True

    return check


def _additional(value: Any, schema: dict[str, Any]) -> Check:
    if "patternProperties" in schema:
        raise Unsupported("patternProperties")
    known = frozenset(schema.get("properties", ()))
    sub = compile_schema(value)
    if sub is _never:
        return lambda x: not isinstance(x, dict) or known.issuperset(x)
    return lambda x: not isinstance(x, dict) or all(sub(v) for k, v in x.items() if k not in known)


def _items(value: Any, schema: dict[str, Any]) -> Check:
    if "prefixItems" in schema:
        raise Unsupported("prefixItems")
    sub = compile_schema(value)

    def check(x: Any) -> bool:
        if not isinstance(x, list):
            return True
        for item in x:  # noqa: SIM110
            if not sub(item):
                return False
        return True

    return check


def _if(value: Any, schema: dict[str, Any]) -> Check:
    test = compile_schema(value)
    then = compile_schema(schema.get("then", True))
    otherwise = compile_schema(schema.get("else", True))
    return lambda x: then(x) if test(x) else otherwise(x)


def _not(value: Any, schema: dict[str, Any]) -> Check:
    sub = compile_schema(value)
    return lambda x: not sub(x)


def _all_of(value: Any, schema: dict[str, Any]) -> Check:
    subs = [compile_schema(v) for v in value]
    return lambda x: all(s(x) for s in subs)


def _any_of(value: Any, schema: dict[str, Any]) -> Check:
    subs = [compile_schema(v) for v in value]
    return lambda x: any(s(x) for s in subs)


def _dependent_schemas(value: Any, schema: dict[str, Any]) -> Check:
    deps = [(k, compile_schema(v)) for k, v in value.items()]
    return lambda x: not isinstance(x, dict) or all(sub(x) for k, sub in deps if k in x)


def _pixel_area(value: Any, schema: dict[str, Any]) -> Check:
    return lambda x: not isinstance(x, str) or not pixel_area_problems(x, value)


def _size_shorthand(value: Any, schema: dict[str, Any]) -> Check:
    return lambda x: not size_shorthand_problems(value, x)


_KEYWORDS: dict[str, Callable[[Any, dict[str, Any]], Check]] = {
    "type": _type,
    "const": _const,
    "enum": _enum,
    "pattern": _pattern,
    "minimum": _bound(lambda x, b: x < b, _TYPES["number"]),
    "maximum": _bound(lambda x, b: x > b, _TYPES["number"]),
    "minLength": _bound(lambda x, b: len(x) < b, _TYPES["string"]),
    "maxLength": _bound(lambda x, b: len(x) > b, _TYPES["string"]),
    "minItems": _bound(lambda x, b: len(x) < b, _TYPES["array"]),
    "maxItems": _bound(lambda x, b: len(x) > b, _TYPES["array"]),
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "items": _items,
    "if": _if,
    "not": _not,
    "allOf": _all_of,
    "anyOf": _any_of,
    "dependentSchemas": _dependent_schemas,
    KW_PIXEL_AREA: _pixel_area,
    KW_SIZE_SHORTHAND: _size_shorthand,
}
