"""The schema itself: valid against its metaschema, consistent, and shipped in the wheel."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from jsonschema import Draft202012Validator

from runner.schema import load_schema, size_table
from tests.helpers import EXAMPLES, ROOT, run_cli


def test_schema_is_valid_against_its_metaschema() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]


def test_schema_table_is_complete_and_matches_its_enums() -> None:
    schema = load_schema()
    table = schema["$defs"]["aspectRatio"]["x-imgbatch-pixel-table"]
    assert list(table) == schema["$defs"]["aspectRatio"]["enum"]
    assert len(table) == 13
    for tiers in table.values():
        assert list(tiers) == schema["$defs"]["resolution"]["enum"] == ["1K", "2K", "4K"]
    assert len(size_table().cells) == 39


def test_schema_command_prints_the_schema() -> None:
    result = run_cli("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == load_schema()


def test_the_wheel_ships_the_schema_inside_the_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("imgbatch-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "runner/schemas/manifest.schema.json" in names
        assert "runner/templates/report.html.j2" in names  # the report's Jinja2 template
        shipped = z.read("runner/schemas/manifest.schema.json").decode()
    assert shipped == (ROOT / "schemas" / "manifest.schema.json").read_text(encoding="utf-8")
    assert any(n.endswith("entry_points.txt") for n in names)


def test_inlined_refs_validate_exactly_like_the_schema_as_written() -> None:
    from runner.schema import manifest_validator, manifest_validator_class
    from runner.yamlio import load_file
    from tests.helpers import TEST_EXAMPLES

    as_written = manifest_validator_class()(load_schema())
    for path in sorted((TEST_EXAMPLES / "invalid").glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml")):
        try:
            data = load_file(path).data
        except Exception:
            continue  # unreadable files never reach the schema
        ours = {(e.json_path, e.message) for e in manifest_validator().iter_errors(data)}
        theirs = {(e.json_path, e.message) for e in as_written.iter_errors(data)}
        assert ours == theirs, path.name


PLAIN_BAD_SIZES = ["16:9@8K", "16:10", "1:1@3K", "16:9@2k", "2048X1152", "2048x1152 ", "1:1\n", "0x100"]


def _plain_errors(data: object) -> list[str]:
    """A standard validator that knows none of imgbatch's keywords, as editors and other
    tools use the schema."""
    validator = Draft202012Validator(load_schema())
    return [e.json_path for e in validator.iter_errors(data)]


def test_a_plain_validator_accepts_the_good_examples() -> None:
    from runner.yamlio import load_file

    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert _plain_errors(load_file(path).data) == [], path.name


def test_a_plain_validator_rejects_malformed_sizes_and_trailing_newlines() -> None:
    for size in PLAIN_BAD_SIZES:
        manifest = {"version": 1, "name": "t", "sizes": [size], "prompts": [{"id": "a", "prompt": "p"}]}
        assert _plain_errors(manifest) == ["$.sizes[0]"], size
    for bad in (
        {"name": "t\n"},
        {"prompts": [{"id": "a\n", "prompt": "p"}]},
        {"callback_url": "https://x\n"},
    ):
        manifest = {
            "version": 1,
            "name": "t",
            "sizes": ["1:1"],
            "prompts": [{"id": "a", "prompt": "p"}],
            **bad,
        }
        assert len(_plain_errors(manifest)) == 1, bad
    # what only imgbatch's own keyword knows: the pixel bounds of WIDTHxHEIGHT
    small = {"version": 1, "name": "t", "sizes": ["100x100"], "prompts": [{"id": "a", "prompt": "p"}]}
    assert _plain_errors(small) == []


def test_the_shorthand_pattern_lists_exactly_the_table() -> None:
    import re

    defs = load_schema()["$defs"]
    pattern = re.compile(defs["sizeShorthand"]["pattern"])
    ratios, tiers = defs["aspectRatio"]["enum"], defs["resolution"]["enum"]
    for ratio in ratios:
        assert pattern.search(ratio)
        for tier in tiers:
            assert pattern.search(f"{ratio}@{tier}")
    candidates = {f"{w}:{h}" for w in range(1, 25) for h in range(1, 25)} - set(ratios)
    assert not any(pattern.search(c) or pattern.search(f"{c}@2K") for c in candidates)
    assert not any(pattern.search(f"1:1@{n}K") for n in range(10) if f"{n}K" not in tiers)


def test_custom_keywords_are_namespaced_and_listed_in_the_schema() -> None:
    from runner.schema import CUSTOM_KEYWORDS

    used: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                used.add(key)
                if key in ("properties", "$defs", "dependentSchemas"):
                    for sub in value.values():  # names of properties, not keywords
                        walk(sub)
                elif key not in ("x-imgbatch-pixel-table", "x-imgbatch-pixel-area"):  # data
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    schema = load_schema()
    walk(schema)
    assert used - STANDARD_KEYWORDS == set(CUSTOM_KEYWORDS)
    assert all(k == "errorMessage" or k.startswith("x-imgbatch-") for k in CUSTOM_KEYWORDS)
    assert all(k in schema["$comment"] for k in CUSTOM_KEYWORDS)


STANDARD_KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "$comment", "title", "description", "default", "type", "enum",
    "const", "required", "properties", "additionalProperties", "items", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "if", "then", "else", "not", "anyOf",
    "dependentSchemas",
}  # fmt: skip
