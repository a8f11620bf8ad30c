"""The 13 x 3 table, the custom-size bounds, the effective floor and the exclusion rule,
checked through the whole path a user takes: manifest -> check -> plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner.manifest import check_file
from runner.plan import expand

# Transcribed from the API page (../shared/api/gpt_image_2.md) as the test's own oracle:
# ratio -> tier -> delivered pixels.
API_PAGE_TABLE = {
    "1:1": {"1K": (1254, 1254), "2K": (2048, 2048), "4K": (2880, 2880)},
    "3:2": {"1K": (1536, 1024), "2K": (2048, 1360), "4K": (3520, 2336)},
    "2:3": {"1K": (1024, 1536), "2K": (1360, 2048), "4K": (2336, 3520)},
    "4:3": {"1K": (1024, 768), "2K": (2048, 1536), "4K": (3312, 2480)},
    "3:4": {"1K": (768, 1024), "2K": (1536, 2048), "4K": (2480, 3312)},
    "5:4": {"1K": (1448, 1086), "2K": (2560, 2048), "4K": (3216, 2576)},
    "4:5": {"1K": (1122, 1402), "2K": (2048, 2560), "4K": (2576, 3216)},
    "16:9": {"1K": (1672, 941), "2K": (2048, 1152), "4K": (3840, 2160)},
    "9:16": {"1K": (941, 1672), "2K": (1152, 2048), "4K": (2160, 3840)},
    "2:1": {"1K": (1774, 887), "2K": (2688, 1344), "4K": (3840, 1920)},
    "1:2": {"1K": (887, 1774), "2K": (1344, 2688), "4K": (1920, 3840)},
    "21:9": {"1K": (1915, 821), "2K": (2688, 1152), "4K": (3840, 1648)},
    "9:21": {"1K": (821, 1915), "2K": (1152, 2688), "4K": (1648, 3840)},
}
CELLS = [(r, t, px) for r, tiers in API_PAGE_TABLE.items() for t, px in tiers.items()]


def plan_of(path: Path) -> list[dict[str, object]]:
    checked = check_file(str(path))
    assert checked.manifest is not None, [d.text() for d in checked.diagnostics]
    return [t.as_json() for t in expand([checked.manifest])]


def errors_of(path: Path) -> list[str]:
    return [d.text() for d in check_file(str(path)).diagnostics if d.severity == "error"]


def warnings_of(path: Path) -> list[str]:
    return [d.text() for d in check_file(str(path)).diagnostics if d.severity == "warning"]


def manifest_with(size_yaml: str) -> str:
    return f"version: 1\nname: t\nsizes:\n  - {size_yaml}\nprompts: [{{id: a, prompt: p}}]\n"


def test_the_table_has_39_cells() -> None:
    assert len(CELLS) == 39


@pytest.mark.parametrize(("ratio", "tier", "pixels"), CELLS, ids=[f"{r}@{t}" for r, t, _ in CELLS])
def test_every_cell_plans_its_delivered_pixels(
    write: Callable[..., Path], ratio: str, tier: str, pixels: tuple[int, int]
) -> None:
    unquoted = write(manifest_with(f"{{aspect_ratio: {ratio}, resolution: {tier}}}"), "a.yaml")
    shorthand = write(manifest_with(f"'{ratio}@{tier}'"), "b.yaml")
    for path in (unquoted, shorthand):
        [task] = plan_of(path)
        assert task["params"] == {"prompt": "p", "aspect_ratio": ratio, "resolution": tier}
        assert task["pixels"] == list(pixels)


def test_ratio_without_resolution_uses_the_manifest_tier_and_is_sent_explicitly(
    write: Callable[..., Path],
) -> None:
    default = write(manifest_with("aspect_ratio: '16:9'"), "a.yaml")
    assert plan_of(default)[0]["params"]["resolution"] == "2K"
    top = write(
        "version: 1\nname: t\nresolution: 4K\nsizes: ['16:9']\n"
        "prompts: [{id: a, prompt: p}, {id: b, prompt: q, resolution: 1K}]\n",
        "b.yaml",
    )
    by_prompt = {t["prompt_id"]: t for t in plan_of(top)}
    assert by_prompt["a"]["pixels"] == [3840, 2160]
    assert by_prompt["b"]["pixels"] == [1672, 941]


@pytest.mark.parametrize(
    ("size", "valid"),
    [
        ("1024x640", True),  # exactly 655,360
        ("1023x640", False),  # 654,720
        ("1024x639", False),
        ("3840x2160", True),  # exactly 8,294,400
        ("3841x2160", False),
        ("3840x2161", False),
        ("2880x2880", True),  # 8,294,400 too
        ("2881x2880", False),
    ],
)
def test_custom_size_bounds(write: Callable[..., Path], size: str, valid: bool) -> None:
    for form in (f"size: {size}", size):
        errors = errors_of(write(manifest_with(form)))
        assert (errors == []) is valid, errors


@pytest.mark.parametrize(
    ("size", "warned"),
    [("2048x1020", False), ("2047x1020", True), ("1440x1450", True), ("1440x1451", False)],
)
def test_effective_floor_warns_and_plans_the_substitute(
    write: Callable[..., Path], size: str, warned: bool
) -> None:
    path = write(manifest_with(f"size: {size}"))
    warnings = warnings_of(path)
    assert bool(warnings) is warned
    [task] = plan_of(path)
    w, h = task["pixels"]  # type: ignore[misc]
    if warned:
        assert "effective floor of 2,088,960" in warnings[0]
        assert 1_450_000 < w * h < 1_700_000  # about 1.57 M
        assert abs(w / h - 2047 / 1020 if size == "2047x1020" else w / h - 1440 / 1450) < 0.05
    else:
        assert [w, h] == [int(x) for x in size.split("x")]


@pytest.mark.parametrize(
    "choice",
    [
        "{size: 2048x1152, aspect_ratio: '16:9'}",
        "{size: 2048x1152, resolution: 2K}",
        "{size: 2048x1152, aspect_ratio: '16:9', resolution: 2K}",
    ],
)
def test_size_excludes_aspect_ratio_and_resolution(write: Callable[..., Path], choice: str) -> None:
    errors = errors_of(write(manifest_with(choice)))
    assert errors and all("'size' excludes" in e for e in errors)


@pytest.mark.parametrize("bad", ["2048X1152", "2048*1152", "0x100", "16:9@8K", "16:10", "x"])
def test_malformed_size_choices_are_errors(write: Callable[..., Path], bad: str) -> None:
    assert errors_of(write(manifest_with(f"'{bad}'")))
