"""The manifest JSON Schema: loading it, validating with its custom keywords, and reading
the size table out of it. The schema file is the only place the 13 x 3 table and the pixel
bounds are written down; everything here derives from it."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import ImgbatchError

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

MANIFEST_SCHEMA = "manifest.schema.json"
LEDGER_RECORD_SCHEMA = "ledger-record.schema.json"

# imgbatch's own keywords, namespaced so other validators can be told to ignore them (the
# README says how). `errorMessage` is not ours: editors (VS Code, yaml-language-server) show it.
KW_PIXEL_TABLE = "x-imgbatch-pixel-table"
KW_PIXEL_AREA = "x-imgbatch-pixel-area"
KW_SIZE_SHORTHAND = "x-imgbatch-size-shorthand"
CUSTOM_KEYWORDS = ("errorMessage", KW_PIXEL_TABLE, KW_PIXEL_AREA, KW_SIZE_SHORTHAND)

# `\Z`, not `$`: in Python `$` also matches before a trailing newline.
CUSTOM_SIZE_RE = re.compile(r"^([1-9][0-9]{0,5})x([1-9][0-9]{0,5})\Z")
SHORTHAND_RATIO_RE = re.compile(r"^([0-9]+:[0-9]+)(?:@([0-9]+K))?\Z")

Pixels = tuple[int, int]


def schema_text(name: str = MANIFEST_SCHEMA) -> str:
    """The schema as shipped. Installed wheels carry it in runner/schemas; a source checkout
    (editable install, tests from the repo) reads the top-level schemas/ folder. Plain files
    are read directly: importlib.resources, needed only for an installation in a zip file,
    costs more to import than reading the schema (start-up is most of a small plan)."""
    here = Path(__file__).resolve().parent
    for path in (here / "schemas" / name, here.parent / "schemas" / name):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    from importlib import resources

    packaged = resources.files("runner").joinpath("schemas", name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    raise ImgbatchError(f"the schema {name} is missing from this installation", hint="reinstall imgbatch")


@cache
def load_schema(name: str = MANIFEST_SCHEMA) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text(name))
    return loaded


@dataclass(frozen=True)
class Cell:
    nominal: Pixels
    delivered: Pixels


@dataclass(frozen=True)
class SizeTable:
    """The provider's size rules as the schema states them."""

    cells: Mapping[tuple[str, str], Cell]
    ratios: tuple[str, ...]
    tiers: tuple[str, ...]
    min_pixels: int
    max_pixels: int
    effective_min_pixels: int
    substituted_pixels: int
    default_resolution: str

    def cell(self, ratio: str, tier: str) -> Cell:
        return self.cells[(ratio, tier)]

    def delivered_custom(self, width: int, height: int) -> Pixels:
        """What upstream delivers for a custom size: the size itself, or below the effective
        floor a silent substitute of about `substituted_pixels` at a similar ratio."""
        if width * height >= self.effective_min_pixels:
            return (width, height)
        scale = math.sqrt(self.substituted_pixels / (width * height))
        return (_round16(width * scale), _round16(height * scale))


def _round16(x: float) -> int:
    return max(16, round(x / 16.0) * 16)


@cache
def size_table() -> SizeTable:
    schema = load_schema()
    defs = schema["$defs"]
    ratio_def = defs["aspectRatio"]
    table = ratio_def[KW_PIXEL_TABLE]
    cells = {
        (ratio, tier): Cell((v["nominal"][0], v["nominal"][1]), (v["delivered"][0], v["delivered"][1]))
        for ratio, tiers in table.items()
        for tier, v in tiers.items()
    }
    area = defs["customSize"][KW_PIXEL_AREA]
    return SizeTable(
        cells=cells,
        ratios=tuple(ratio_def["enum"]),
        tiers=tuple(defs["resolution"]["enum"]),
        min_pixels=area["minimum"],
        max_pixels=area["maximum"],
        effective_min_pixels=area["effectiveMinimum"],
        substituted_pixels=area["substitutedArea"],
        default_resolution=schema["properties"]["resolution"]["default"],
    )


def parse_custom_size(text: str) -> Pixels | None:
    m = CUSTOM_SIZE_RE.match(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def pixel_area_problems(value: str, bounds: Mapping[str, int]) -> list[str]:
    """What the x-imgbatch-pixel-area keyword says of a string (nothing if it is fine)."""
    wh = parse_custom_size(value)
    if wh is None:
        return []  # the pattern keyword reports the malformed string
    area = wh[0] * wh[1]
    if area < bounds["minimum"]:
        return [f"size {value} is {area:,} pixels, below the minimum of {bounds['minimum']:,}"]
    if area > bounds["maximum"]:
        return [f"size {value} is {area:,} pixels, above the maximum of {bounds['maximum']:,}"]
    return []


def size_shorthand_problems(enabled: Any, instance: Any) -> list[str]:
    """What the x-imgbatch-size-shorthand keyword says of a value (nothing if it is fine)."""
    if not enabled or not isinstance(instance, str):
        return []
    if "x" in instance:
        return pixel_area_problems(instance, load_schema()["$defs"]["customSize"][KW_PIXEL_AREA])
    m = SHORTHAND_RATIO_RE.match(instance)
    if m is None:
        return []  # the pattern keyword reports it
    table = size_table()
    ratio, tier = m.group(1), m.group(2)
    out = []
    if ratio not in table.ratios:
        out.append(f"aspect ratio {ratio!r} is not offered upstream")
    if tier is not None and tier not in table.tiers:
        out.append(f"resolution {tier!r} in {instance!r} is not offered upstream")
    return out


def _keyword_pixel_area(
    validator: Validator, bounds: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    from jsonschema import ValidationError

    if isinstance(instance, str):
        yield from (ValidationError(m) for m in pixel_area_problems(instance, bounds))


def _keyword_size_shorthand(
    validator: Validator, enabled: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    from jsonschema import ValidationError

    yield from (ValidationError(m) for m in size_shorthand_problems(enabled, instance))


def _is_integer(checker: Any, instance: Any) -> bool:
    # JSON Schema counts 2.0 as an integer; YAML reads `repeat: 2.0` as a float, and
    # range(2.0) fails, so here an integer is an int.
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def manifest_validator_class() -> Any:
    """Draft 2020-12 with imgbatch's keywords, and integers that are ints. jsonschema is
    imported here, not at start-up: it costs more than the rest of a small plan, and a valid
    manifest never needs it (runner/schemafast.py)."""
    from jsonschema import Draft202012Validator, validators

    return validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator,
        {KW_PIXEL_AREA: _keyword_pixel_area, KW_SIZE_SHORTHAND: _keyword_size_shorthand},
        type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
    )


@cache
def manifest_validator() -> Validator:
    return manifest_validator_class()(inline_refs(load_schema()))  # type: ignore[no-any-return]


# Keywords that only describe: a `$ref`'s sibling may restate them (its own description).
_NOTES = frozenset({"title", "description", "default", "examples", "$comment", "errorMessage", "deprecated"})
# Keywords that read each other within one schema object: `additionalProperties` beside a
# `$ref` sees only the properties beside it, not the target's, so such a pair must not merge.
_READ_TOGETHER = (
    frozenset({"properties", "patternProperties", "additionalProperties", "unevaluatedProperties"}),
    frozenset({"prefixItems", "items", "unevaluatedItems"}),
    frozenset({"contains", "minContains", "maxContains"}),
    frozenset({"if", "then", "else"}),
)


def _mergeable(target: Any, siblings: dict[str, Any]) -> bool:
    """Whether a `$ref`'s siblings can join its target's object without changing a meaning."""
    if not isinstance(target, dict):
        return False
    for key in siblings:
        if key in _NOTES:
            continue
        if key in target:
            return False
        if any(key in group and not group.isdisjoint(target) for group in _READ_TOGETHER):
            return False
    return True


def inline_refs(schema: Any, root: Any = None, expanding: tuple[str, ...] = ()) -> Any:
    """A copy of the schema with each local `$ref` replaced by what it points to, merged with
    its sibling annotations. Same meaning, but validation no longer resolves a reference for
    each of thousands of prompts. A sibling that asserts what the target asserts too (a
    `maximum` beside a `$ref` to one) must not replace it: `$ref` and its siblings both
    apply, so those become an `allOf`. A recursive reference stays a `$ref` (jsonschema
    resolves it; runner/schemafast.py then gives up)."""
    root = schema if root is None else root
    if isinstance(schema, list):
        return [inline_refs(s, root, expanding) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    target = _local_target(root, ref) if isinstance(ref, str) and ref not in expanding else None
    out = {k: inline_refs(v, root, expanding) for k, v in schema.items() if k != "$ref"}
    if target is None:
        if ref is not None:
            out["$ref"] = ref
        return out
    assert isinstance(ref, str)
    inlined = inline_refs(target, root, (*expanding, ref))
    if _mergeable(inlined, out):
        return {**inlined, **out}
    return {"allOf": [inlined, out]} if out else inlined


def _local_target(root: Any, ref: str) -> Any:
    """What a `#/...` JSON pointer names in the schema, or None (not local, or not there)."""
    if not ref.startswith("#/"):
        return None
    target: Any = root
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return None
    return target
