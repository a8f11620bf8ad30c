"""What a YAML scalar means, by the YAML 1.2 core schema rather than PyYAML's YAML 1.1
default: there, an unquoted `16:9` is the base-60 integer 969 and `no` is False, which is
never what a manifest author meant. A tag is honoured exactly or refused, never guessed at."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from yaml.events import ScalarEvent
from yaml.nodes import ScalarNode
from yaml.resolver import BaseResolver

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"


class Core12Resolver(BaseResolver):
    """Implicit typing of plain scalars per the YAML 1.2 core schema."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # Most scalars of a manifest (keys, ids, prompts) start with a character no implicit
        # type can start with: they are strings, known without the base class's list work.
        # (This schema has no path resolvers nor resolvers for any first character.)
        if kind is ScalarNode and implicit[0] and value and value[0] not in FIRST_CHARS:
            return STR
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


# `\Z`, not `$`: in Python `$` also matches before a trailing newline.
for _tag, _regexp, _first in [
    (BOOL, r"^(?:true|True|TRUE|false|False|FALSE)\Z", "tTfF"),
    (INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z", "-+0123456789"),
    (
        FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z",
        "-+0123456789.",
    ),
    (NULL, r"^(?:~|null|Null|NULL|)\Z", ["~", "n", "N", ""]),
]:
    Core12Resolver.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))

FIRST_CHARS = frozenset(k for k in Core12Resolver.yaml_implicit_resolvers if k)
assert None not in Core12Resolver.yaml_implicit_resolvers  # no wildcard: the fast path holds
_RESOLVER = Core12Resolver()
MAX_INT_CHARS = 1000


class Problem(NamedTuple):
    message: str
    hint: str


def tag_problem(tag: str) -> Problem:
    return Problem(
        f"the tag {short_tag(tag)} is not supported; write the value plainly",
        "imgbatch reads no tags: quote the value if it is text",
    )


def scalar_value(event: ScalarEvent) -> tuple[Any, Problem | None]:
    """The value of a scalar, and what is wrong with it if anything (the text as written is
    then the value)."""
    tag, value = event.tag, event.value
    if tag is None:
        if not event.implicit[0]:  # quoted or block text
            return value, None
        tag = resolve_plain(value)
    elif tag == "!" or tag == STR:
        # `!!str` is honoured exactly (the text as written), and so is the non-specific tag
        # `!`, which makes text in YAML 1.2 (`! 12` is "12"; PyYAML would read 12).
        return value, None
    elif event.style or resolve_plain(value) != tag:
        # Any other written tag is refused rather than guessed at (PyYAML would read
        # `!!bool yes` as false and `!!null foo` as null); one that says what the plain text
        # means anyway (`!!int 12`) changes nothing.
        return value, tag_problem(tag)
    if tag == STR:
        return value, None
    if tag == NULL:
        return None, None
    if tag == BOOL:
        return value.lower() == "true", None
    if tag == INT:
        # Python refuses to turn integers of over 4,300 digits to or from text; none fits a
        # manifest anyway.
        if len(value) > MAX_INT_CHARS:
            return value, Problem(
                f"a number of {len(value):,} digits is too large for any manifest value",
                "quote it if it is text",
            )
        if value.startswith(("0o", "0x")):
            return int(value[2:], 8 if value[1] == "o" else 16), None
        return int(value, 10), None
    number = float(value.lower().replace(".inf", "inf").replace(".nan", "nan"))
    if number != number or number in (float("inf"), float("-inf")):
        return value, Problem(f"{value!r} is not a finite number", "quote it if it is text")
    return number, None


def key_problem(event: ScalarEvent) -> Problem | None:
    """What is wrong with a scalar as a mapping key: a tag other than one saying what its
    text means anyway, or a key that reads as null."""
    tag = event.tag
    if tag is None:
        tag = resolve_plain(event.value) if event.implicit[0] else STR
    elif tag == "!":
        tag = STR
    elif tag != STR and (event.style or resolve_plain(event.value) != tag):
        return tag_problem(tag)
    if tag == NULL:
        return Problem("empty key", "write the key name before ':'")
    return None


def resolve_plain(plain: str) -> str:
    """The tag of a plain (unquoted, untagged) scalar by the YAML 1.2 core schema."""
    return str(_RESOLVER.resolve(ScalarNode, plain, (True, False)))


def reads_as_text(plain: str) -> bool:
    """Whether `plain`, written unquoted, is read back as that text (`123`, `true`, `1e5` are not)."""
    return resolve_plain(plain) == STR


def short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag
