"""What a YAML scalar means, by the YAML 1.2 core schema rather than PyYAML's YAML 1.1
default: there, an unquoted `16:9` is the base-60 integer 969 and `no` is False, which is
never what a manifest author meant. A tag is honoured exactly or refused, never guessed at."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

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
        if kind is ScalarNode and implicit[0] and value and value[0] not in _FIRST_CHARS:
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

_FIRST_CHARS = frozenset(k for k in Core12Resolver.yaml_implicit_resolvers if k)
assert None not in Core12Resolver.yaml_implicit_resolvers  # no wildcard: the fast path holds
_RESOLVER = Core12Resolver()
MAX_INT_CHARS = 1000
# A node's properties (anchor and tag, in either order) as written before its value.
_PROPERTIES = re.compile(r"(?:([&!][^\s,\[\]{}]*)[ \t]*(?:\r\n|[\r\n])?[ \t]*){1,2}")


class Problem(NamedTuple):
    message: str
    hint: str


def tag_problem(tag: str) -> Problem:
    return Problem(
        f"the tag {short_tag(tag)} is not supported; write the value plainly",
        "imgbatch reads no tags: quote the value if it is text",
    )


def scalar_value(node: ScalarNode, text: str) -> tuple[Any, Problem | None]:
    """The value of a scalar node of the document `text`, and what is wrong with it if anything
    (the text as written is then the value)."""
    tag, value = node.tag, node.value
    # The node does not say whether its tag was written or resolved: it was written when it
    # differs from what the plain text resolves to. `!!str` is honoured exactly (the text as
    # written); any other written tag is refused rather than guessed at (PyYAML would read
    # `!!bool yes` as false and `!!null foo` as null).
    if tag == STR:
        return value, None
    if written_tag(node):
        return value, tag_problem(tag)
    if non_specific(node, text):
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


def reads_as_text(plain: str) -> bool:
    """Whether `plain`, written unquoted, is read back as that text (`123`, `true`, `1e5` are not)."""
    return bool(_RESOLVER.resolve(ScalarNode, plain, (True, False)) == STR)


def written_tag(node: ScalarNode) -> bool:
    """Whether a non-string scalar's tag was written in the file: it differs from what the
    plain text resolves to (the node itself does not say)."""
    if node.style:  # quoted or block text resolves to a string
        return True
    implicit = _RESOLVER.resolve(ScalarNode, node.value, (True, False))
    return bool(node.tag != implicit)


def non_specific(node: ScalarNode, text: str) -> bool:
    """Whether the scalar carries the non-specific tag `!`, which makes it a string in YAML 1.2
    (`! 12` is the text "12"). PyYAML resolves it like a plain scalar and leaves no trace of it
    on the node, so the properties written at the node's start are read from the text."""
    if not text.startswith(("!", "&"), node.start_mark.index):
        return False
    m = _PROPERTIES.match(text, node.start_mark.index)
    return m is not None and any(p in ("!", "!<!>") for p in re.split(r"\s+", m.group(0).strip()))


def short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag
