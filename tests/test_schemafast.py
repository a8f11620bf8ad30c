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
