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
    table = schema["$defs"]["aspectRatio"]["pixelTable"]
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
        shipped = z.read("runner/schemas/manifest.schema.json").decode()
    assert shipped == (ROOT / "schemas" / "manifest.schema.json").read_text(encoding="utf-8")
    assert any(n.endswith("entry_points.txt") for n in names)


def test_inlined_refs_validate_exactly_like_the_schema_as_written() -> None:
    from jsonschema import validators

    from runner.schema import _keyword_pixel_area, _keyword_size_shorthand, manifest_validator
    from runner.yamlio import load_file
    from tests.helpers import TEST_EXAMPLES

    cls = validators.extend(
        Draft202012Validator,
        {"pixelArea": _keyword_pixel_area, "sizeShorthand": _keyword_size_shorthand},
    )
    as_written = cls(load_schema())
    for path in sorted((TEST_EXAMPLES / "invalid").glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml")):
        try:
            data = load_file(path).data
        except Exception:
            continue  # unreadable files never reach the schema
        ours = {(e.json_path, e.message) for e in manifest_validator().iter_errors(data)}
        theirs = {(e.json_path, e.message) for e in as_written.iter_errors(data)}
        assert ours == theirs, path.name
