"""The compiled schema check (runner/schemafast.py) answers exactly as jsonschema does: it must
never accept a manifest jsonschema rejects (that would plan and pay for bad input), and a
manifest it rejects goes to jsonschema for the messages, so the two must agree both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.schema import manifest_validator
from runner.schemafast import Unsupported, compile_schema, is_valid_manifest, manifest_check
from runner.yamlio import load_file
from tests.helpers import EXAMPLES, ROOT, TEST_EXAMPLES

MISSING = object()


def jsonschema_says_valid(data: Any) -> bool:
    return not list(manifest_validator().iter_errors(data))


def test_the_shipped_schema_compiles() -> None:
    # Otherwise every manifest silently takes the slow path.
    assert manifest_check() is not None


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml")) + sorted(TEST_EXAMPLES.rglob("*.yaml"))


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_agrees_with_jsonschema_on_every_example_file(path: Path) -> None:
    try:
        data = load_file(path).data
    except Exception:
        return  # unreadable files never reach the schema
    assert is_valid_manifest(data) == jsonschema_says_valid(data)


GOOD: dict[str, Any] = {"version": 1, "name": "ok", "sizes": ["1:1"], "prompts": [{"id": "a", "prompt": "p"}]}


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({}, True),
        ({"version": 1.0}, True),  # jsonschema's const: 1.0 is 1
        ({"version": True}, False),  # but True is not
        ({"version": "1"}, False),
        ({"repeat": 2.0}, False),  # integers are ints here
        ({"repeat": True}, False),
        ({"repeat": 100}, True),
        ({"repeat": 101}, False),
        ({"name": "ok\n"}, False),
        ({"sizes": ["1:1@8K"]}, False),
        ({"sizes": ["100x100"]}, False),  # below the pixel minimum (imgbatch's keyword)
        ({"sizes": [{"size": "2048x1152", "resolution": "2K"}]}, False),
        ({"sizes": [{"resolution": "2K"}]}, False),
        ({"sizes": [5]}, False),
        ({"sizes": None}, False),
        ({"metadata": {"x": [1, {"y": None}]}}, True),
        ({"callback_url": "https://example.com/x"}, True),
        ({"callback_url": "https://example.com/x y"}, False),
        ({"extra": 1}, False),
    ],
)
def test_agrees_with_jsonschema_on_known_edges(change: dict[str, Any], valid: bool) -> None:
    data = {**GOOD, **change}
    assert jsonschema_says_valid(data) is valid
    assert is_valid_manifest(data) is valid


def test_a_keyword_it_does_not_know_makes_it_give_up() -> None:
    with pytest.raises(Unsupported):
        compile_schema({"type": "array", "uniqueItems": True})
    with pytest.raises(Unsupported):
        compile_schema({"$ref": "https://example.com/other.json"})


# --- generated manifests: mostly good values, now and then a bad one or anything at all ----

anything = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=True) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)


def field(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """A good value eleven times in twelve; otherwise a known bad one or anything."""
    worse = (st.sampled_from(bad) | anything) if bad else anything
    return st.integers(0, 11).flatmap(lambda i: worse if i == 0 else st.sampled_from(good))


def some(strategy: st.SearchStrategy[Any], min_size: int = 1) -> st.SearchStrategy[Any]:
    return field([None], []).flatmap(
        lambda v: st.lists(strategy, min_size=min_size, max_size=3) if v is None else st.just(v)
    )


size_string = field(
    ["16:9", "16:9@2K", "9:21@4K", "1:1@1K", "2048x1152", "2048x1020", "1024x640"],
    [
        "16:10",
        "16:10@2K",
        "1:1@8K",
        "1:1@2k",
        "100x100",
        "4000x4000",
        "2048X1152",
        "1:1\n",
        "0x100",
        "1x1",
        "",
    ],
)


def rare(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A key present once in twelve documents (dropped where the value is MISSING)."""
    return field([MISSING], []).flatmap(lambda v: strategy if v is not MISSING else st.just(MISSING))


def record(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional).map(
        lambda d: {k: v for k, v in d.items() if v is not MISSING}
    )


ratio = field(["16:9", "1:1", "2:1"], ["16:10", "1:1\n", 1])
tier = field(["1K", "2K", "4K"], ["8K", "2k", 2])
custom = field(["2048x1152", "3000x2000"], ["100x100", "9000x9000", "2048X1152"])
size_shapes = [
    record({}, {"aspect_ratio": ratio, "resolution": tier, "size": custom, "sized": anything}),
    record({"aspect_ratio": ratio}, {"resolution": tier, "size": rare(custom), "sized": rare(anything)}),
    record({"size": custom}, {"resolution": rare(tier), "aspect_ratio": rare(ratio)}),
]
size_object = st.integers(0, 7).flatmap(lambda i: size_shapes[0 if i == 0 else 1 + i % 2])
size_list = some(size_string | size_object)
common = {
    "sizes": size_list,
    "resolution": field(["1K", "2K", "4K"], ["8K", "2k"]),
    "repeat": field([1, 2, 100], [0, 101, 2.0, True, "3"]),
    "metadata": field([{}, {"a": 1, "b": [None, "x"]}], [[], "x"]),
    "callback_url": field(["https://x.org/h", "http://y"], ["ftp://x", "https://x\n", "https://a b"]),
}
prompt = record(
    {
        "id": field(["a", "a.b_c-D9", "x" * 64, "9"], ["-a", "a\n", "", "x" * 65, 1]),
        "prompt": field(["p", "  x", "多"], ["", " ", "\n", "x" * 32001, 5]),
    },
    {**common, "promt": rare(anything)},
)
manifest = record(
    {
        "version": field([1, 1.0], [True, "1", 2]),
        "name": field(["ok", "a-b", "x" * 40], ["A", "a--b", "t\n", "", "x" * 41]),
        "prompts": some(prompt),
        "sizes": size_list,
    },
    {**{k: v for k, v in common.items() if k != "sizes"}, "nme": rare(anything)},
)
document = field([None], []).flatmap(lambda v: manifest if v is None else st.just(v))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
def test_agrees_with_jsonschema_on_generated_documents(data: Any) -> None:
    assert is_valid_manifest(data) == jsonschema_says_valid(data)


def test_a_valid_manifest_is_planned_without_importing_jsonschema() -> None:
    probe = (
        "import sys\nfrom runner.cli import cli\n"
        "try:\n    cli(sys.argv[1:], prog_name='imgbatch')\nexcept SystemExit:\n    pass\n"
        "sys.stdout.flush()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'jsonschema')\n"
        "print(json.dumps(loaded), file=sys.stderr)"
    )
    for args in (["plan", "--format", "jsonl", str(EXAMPLES)], ["validate", str(EXAMPLES)]):
        proc = subprocess.run(
            [sys.executable, "-c", "import json\n" + probe, *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert proc.stdout, proc.stderr
        assert json.loads(proc.stderr.strip().splitlines()[-1]) == [], args


# --- nastier documents: one value anywhere in a near-valid manifest replaced by an edge case --

_edge_strings = [
    "ok\n", "ok\r", "ok\r\n", "ok\u2028", "ok\x85", "\ud800", "a\udfff", "x" * 39 + "\U0001f600", "x" * 40,
    "x" * 41, "\u0661", "a\u0661", "\u0661\u0666:\u0669", "16:9\n", "16:9@2K\n", "2048x1152\n",
    "\uff12\uff10\uff14\uff18x1152", "640x1024", "639x1024", "1024x640", "2880x2880", "2881x2880",
    "2880x2881", "1x655360", "999999x9", "0x0", "2048x01152", " 16:9", "16:9 ", "5:4@1K", "1:1@2k",
    "https://x", "https://x\n", "https://x\u2028", "https://\u00a0x", "http://", "https://" + "x" * 2040,
    "https://" + "x" * 2041, " ", "\u3000", "\u200b", "\x1c", "\u00b2", "\u0131", "K", "x" * 64, "x" * 65,
    "-a", ".a", "_a", "a--b", "a-", "\u00e9", "\U0001d7d9",
]  # fmt: skip
_edge_numbers = [
    True, False, 0, 1, -1, 1.0, -0.0, 0.0, 100, 100.0, 101, 1.5, 2**64, 10**400, -(10**400),
    float("nan"), float("inf"), -float("inf"), 1e-300,
]  # fmt: skip
_edge_good = [
    "16:9@2K",
    "2:1",
    "2K",
    2,
    "a-b",
    "3000x2000",
    {"aspect_ratio": "1:1"},
    {"size": "2048x1152"},
    ["4:5"],
]
edge = st.sampled_from([*_edge_strings, *_edge_numbers, *_edge_good, None, [], {}, [1]]) | st.text(
    st.characters(codec="utf-8", exclude_categories=()) | st.sampled_from("0123456789x:@K\n"), max_size=12
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*here, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*here, i)))
    return out


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [*value[:head], _replaced(value[head], rest, new), *value[head + 1 :]]


_good_sizes = st.lists(
    st.sampled_from(
        ["16:9", "1:1@4K", "2048x1152", {"aspect_ratio": "16:9"}, {"aspect_ratio": "1:1", "resolution": "1K"}]
    ),
    min_size=1,
    max_size=3,
)
_good_common = {
    "repeat": st.sampled_from([1, 100]),
    "resolution": st.sampled_from(["1K", "4K"]),
    "metadata": st.sampled_from([{}, {"k": [1, None]}]),
    "callback_url": st.just("https://x.org/h"),
}
valid_manifest = st.fixed_dictionaries(
    {
        "version": st.sampled_from([1, 1.0]),
        "name": st.sampled_from(["ok", "a-b"]),
        "prompts": st.lists(
            st.fixed_dictionaries(
                {"id": st.sampled_from(["a", "b.c"]), "prompt": st.sampled_from(["p", "\u591a"])},
                optional={"sizes": _good_sizes, **_good_common},
            ),
            min_size=1,
            max_size=3,
        ),
        "sizes": _good_sizes,
    },
    optional={"description": st.just("d"), **_good_common},
)


@st.composite
def nasty_documents(draw: st.DrawFn) -> Any:
    """A valid manifest with one value (now and then two) replaced, added or removed: one
    error at a time, so the fast check cannot be right by way of another error."""
    data = draw(valid_manifest)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
        path = draw(st.sampled_from(_paths(data)))
        target: Any = data
        for part in path:
            target = target[part]
        how = draw(st.integers(0, 3))
        if isinstance(target, dict) and target and how == 0:  # a key removed
            gone = draw(st.sampled_from(sorted(target)))
            data = _replaced(data, path, {k: v for k, v in target.items() if k != gone})
        elif isinstance(target, dict) and how == 1:  # a key added, or a known one set
            key = draw(
                st.sampled_from(["size", "aspect_ratio", "resolution", "sizes", "repeat", "id", "x", ""])
            )
            data = _replaced(data, path, {**target, key: draw(edge)})
        else:
            data = _replaced(data, path, draw(edge))
    return data


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nasty_documents())
def test_agrees_with_jsonschema_on_edge_values_anywhere(data: Any) -> None:
    assert is_valid_manifest(data) == jsonschema_says_valid(data)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("640x1024", True),  # 655,360 pixels: the minimum itself
        ("639x1024", False),
        ("2880x2880", True),  # 8,294,400: the maximum itself
        ("2881x2880", False),
        ("2048x1152\n", False),
        ("\uff12\uff10\uff14\uff18x1152", False),  # fullwidth digits are not [0-9]
        ("\u0661\u0666:\u0669", False),  # nor are Arabic-Indic ones
    ],
)
def test_size_edges_agree_in_both_forms(value: str, valid: bool) -> None:
    for sizes in ([value], [{"size": value}]):
        data = {**GOOD, "sizes": sizes}
        assert jsonschema_says_valid(data) is valid
        assert is_valid_manifest(data) is valid


# --- the shipped schema changed: the fast check must follow it or give up ----------------------


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install an edited copy of the schema as the one imgbatch ships, for this test only."""
    import runner.schema as schema_module
    import runner.schemafast as fast_module

    caches = (
        schema_module.load_schema,
        schema_module.size_table,
        schema_module.manifest_validator,
        fast_module.manifest_check,
    )

    def install(edit: Any) -> None:
        edited = json.loads(schema_module.schema_text())
        edit(edited)
        monkeypatch.setattr(schema_module, "schema_text", lambda name="": json.dumps(edited))
        for cached in caches:
            cached.cache_clear()

    yield install
    monkeypatch.undo()
    for cached in caches:
        cached.cache_clear()


def _diagnostics(text: str) -> list[str]:
    from runner.check import schema_diagnostics
    from runner.yamlio import load_text

    return [d.message for d in schema_diagnostics(load_text(text, "m.yaml"))]


TWINS = (
    'version: 1\nname: ok\nsizes: ["1:1"]\nprompts:\n'
    "  - {id: a, prompt: p, repeat: 50}\n  - {id: a, prompt: p, repeat: 50}\n"
)


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s["properties"]["prompts"].update(uniqueItems=True),
        lambda s: s["$defs"]["repeat"].update(exclusiveMaximum=50),
        lambda s: s["$defs"]["repeat"].update(multipleOf=7),
        lambda s: s["$defs"]["prompt"].update(patternProperties={"^r": {"type": "string"}}),
        lambda s: s["$defs"]["prompt"]["properties"]["id"].update(format="email", enum=[["a"]]),
        lambda s: s["$defs"]["prompt"].update(maxProperties=2),
    ],
    ids=[
        "uniqueItems",
        "exclusiveMaximum",
        "multipleOf",
        "patternProperties",
        "enum-of-lists",
        "maxProperties",
    ],
)
def test_a_keyword_the_compiler_does_not_know_sends_every_manifest_to_jsonschema(
    shipped: Any, edit: Any
) -> None:
    shipped(edit)
    assert manifest_check() is None
    assert _diagnostics(TWINS), "the edited schema rejects this manifest"


def test_a_ref_beside_the_same_keyword_keeps_both_bounds(shipped: Any) -> None:
    # `$ref` and its siblings both apply (2020-12): a looser sibling `maximum` must not
    # replace the referenced one, in the fast check or in jsonschema's messages.
    def edit(s: dict[str, Any]) -> None:
        s["$defs"]["prompt"]["properties"]["repeat"] = {"$ref": "#/$defs/repeat", "maximum": 1000}

    shipped(edit)
    data = {**GOOD, "prompts": [{"id": "a", "prompt": "p", "repeat": 500}]}
    assert is_valid_manifest(data) is False
    assert jsonschema_says_valid(data) is False
    assert is_valid_manifest({**GOOD, "prompts": [{"id": "a", "prompt": "p", "repeat": 100}]}) is True
    assert (
        _diagnostics(TWINS.replace("repeat: 50", "repeat: 500"))
        == ["500 is greater than the maximum of 100"] * 2
    )


def test_a_recursive_ref_is_left_to_jsonschema(shipped: Any) -> None:
    def edit(s: dict[str, Any]) -> None:
        s["$defs"]["metadata"] = {"type": "object", "additionalProperties": {"$ref": "#/$defs/metadata"}}

    shipped(edit)
    assert manifest_check() is None
    assert jsonschema_says_valid({**GOOD, "metadata": {"a": {"b": {}}}})
    assert not jsonschema_says_valid({**GOOD, "metadata": {"a": {"b": 1}}})
    assert _diagnostics(TWINS.replace("repeat: 50", "metadata: {a: {b: 1}}"))


def test_additional_properties_beside_a_ref_sees_only_its_own_properties(shipped: Any) -> None:
    # As any 2020-12 validator reads it: `additionalProperties: false` next to a `$ref` knows
    # none of the target's properties, so every key is refused. Merged into the target's
    # object it would have allowed them.
    from jsonschema import Draft202012Validator

    from runner.schema import load_schema

    def edit(s: dict[str, Any]) -> None:
        s["$defs"]["team"] = {"type": "object", "properties": {"team": {"type": "string"}}}
        metadata = {"$ref": "#/$defs/team", "additionalProperties": False}
        s["$defs"]["prompt"]["properties"]["metadata"] = metadata

    shipped(edit)
    data = {**GOOD, "prompts": [{"id": "a", "prompt": "p", "metadata": {"team": "x"}}]}

    assert not Draft202012Validator(load_schema()).is_valid(data)
    assert jsonschema_says_valid(data) is False
    assert is_valid_manifest(data) is False
    assert is_valid_manifest({**data, "prompts": [{"id": "a", "prompt": "p", "metadata": {}}]}) is True


# --- the fused shapes (runner/schemafused.py) against jsonschema on schemas of their own ------

FUSED_SHAPES: list[Any] = [
    {"type": "string", "pattern": "^[a-z]+$(?!\n)", "minLength": 2, "maxLength": 4},
    {"type": "string", "minLength": 1.5, "maxLength": 3.0},
    {"type": "string", "maxLength": float("nan")},
    {"type": "string", "pattern": "\\S"},
    {
        "type": "object",
        "required": ["a"],
        "additionalProperties": False,
        "properties": {"a": {"type": "string"}},
    },
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": True},
        "additionalProperties": {"type": "null"},
    },
    {"type": "object", "required": ["a", "b"]},
    {
        "type": "object",
        "properties": {"a": {"type": "object", "required": ["x"], "properties": {"x": False}}},
    },
]


@pytest.mark.parametrize("schema", FUSED_SHAPES, ids=[str(i) for i in range(len(FUSED_SHAPES))])
@settings(max_examples=150, deadline=None)
@given(value=anything | st.dictionaries(st.sampled_from(["a", "b", "x", ""]), anything, max_size=3))
def test_fused_shapes_agree_with_jsonschema(schema: Any, value: Any) -> None:
    from runner.schema import manifest_validator_class

    assert compile_schema(schema)(value) == manifest_validator_class()(schema).is_valid(value)
