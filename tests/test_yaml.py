"""YAML as people write it: unquoted values, repeated keys, odd encodings, hostile files."""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.manifest import check_file
from runner.plan import expand

CAT = (
    "version: 1\nname: cats\nsizes: [{aspect_ratio: 16:9, resolution: 2K}]\n"
    "prompts:\n  - id: cat\n    prompt: Ein Kätzchen 🐱\n"
)


def only_error(path: Path) -> str:
    diags = [d.text() for d in check_file(str(path)).diagnostics if d.severity == "error"]
    assert len(diags) >= 1
    return diags[0]


def test_unquoted_ratio_is_the_ratio_not_a_base_60_number(write: Callable[..., Path]) -> None:
    checked = check_file(str(write(CAT)))
    assert checked.manifest is not None
    [task] = expand([checked.manifest])
    assert task.params["aspect_ratio"] == "16:9"


def test_yes_no_on_off_stay_text(write: Callable[..., Path]) -> None:
    path = write(
        "version: 1\nname: t\nsizes: ['1:1']\nprompts:\n  - {id: no, prompt: yes}\n"
        "  - {id: on, prompt: off}\n"
    )
    checked = check_file(str(path))
    assert checked.manifest is not None
    assert [(p.id, p.text) for p in checked.manifest.prompts] == [("no", "yes"), ("on", "off")]


def test_numbers_where_text_is_expected_are_errors_with_a_fix(write: Callable[..., Path]) -> None:
    msg = only_error(write("version: 1\nname: t\nsizes: ['1:1']\nprompts: [{id: 12, prompt: p}]\n"))
    assert ":4:16:" in msg and "expected a string, got integer 12" in msg and "quote" in msg


def test_a_repeated_key_is_an_error_at_the_second_one(write: Callable[..., Path]) -> None:
    msg = only_error(write(CAT + "name: dogs\n"))
    assert ":7:1:" in msg and "key 'name' appears twice (first at line 2)" in msg


def test_all_errors_of_a_file_are_reported(write: Callable[..., Path]) -> None:
    path = write(
        "version: 1\nname: t\nsizes: ['1:1', '1:7', 100x100]\n"
        "prompts: [{id: a, prompt: p, colour: red}, {id: a, prompt: 3}]\n"
    )
    errors = [d for d in check_file(str(path)).diagnostics if d.severity == "error"]
    assert {d.json_path for d in errors} == {
        "$.sizes[1]",
        "$.sizes[2]",
        "$.prompts[0].colour",
        "$.prompts[1].prompt",
        "$.prompts[1].id",
    }


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
    ],
)
def test_byte_order_marked_encodings_are_understood(
    write: Callable[..., Path], bom: bytes, codec: str
) -> None:
    checked = check_file(str(write(bom + CAT.encode(codec))))
    assert checked.manifest is not None
    assert checked.manifest.prompts[0].text == "Ein Kätzchen 🐱"


def test_latin1_is_refused_with_the_position(write: Callable[..., Path]) -> None:
    msg = only_error(write(CAT.replace("🐱", "").encode("latin-1")))
    assert ":6:18:" in msg and "byte 0xE4 is not UTF-8" in msg and "save the file as UTF-8" in msg


def test_utf16_without_bom_is_refused(write: Callable[..., Path]) -> None:
    assert "UTF-16 without a byte-order mark" in only_error(write(CAT.encode("utf-16-le")))


def test_binary_junk_is_refused(write: Callable[..., Path]) -> None:
    assert "binary data" in only_error(write(bytes(range(256)) * 4))


def test_control_characters_are_refused(write: Callable[..., Path]) -> None:
    assert "not readable as YAML" in only_error(write(CAT.replace("cat\n", "c\x07at\n")))


def test_empty_file(write: Callable[..., Path]) -> None:
    assert "the file is empty" in only_error(write(""))


def test_alias_bomb_fails_fast(write: Callable[..., Path]) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    start = time.monotonic()
    msg = only_error(write("\n".join(lines) + "\n"))
    assert "alias bomb" in msg
    assert time.monotonic() - start < 10  # generous: the point is it ends at all


def test_recursive_alias(write: Callable[..., Path]) -> None:
    assert "refers to itself" in only_error(write("a: &a [*a]\n"))


def test_deep_nesting(write: Callable[..., Path]) -> None:
    assert "nest" in only_error(write("a: " + "[" * 5000 + "]" * 5000 + "\n"))


def test_huge_file_is_refused_without_parsing(write: Callable[..., Path]) -> None:
    path = write(b"#" * (33 * 1024 * 1024))
    assert "larger than 32 MiB" in only_error(path)


def test_python_tags_are_never_constructed(write: Callable[..., Path]) -> None:
    msg = only_error(write(CAT + "description: !!python/object/apply:os.system ['true']\n"))
    assert "is not supported" in msg


def test_anchors_and_merge_keys_work(write: Callable[..., Path]) -> None:
    path = write("""
        version: 1
        name: t
        sizes: &std ['1:1@2K', '16:9@4K']
        prompts:
          - &base {id: a, prompt: p, repeat: 2}
          - {<<: *base, id: b}
          - {id: c, prompt: q, sizes: *std}
    """)
    checked = check_file(str(path))
    assert checked.manifest is not None
    assert [(p.id, p.text, p.repeat) for p in checked.manifest.prompts] == [
        ("a", "p", 2),
        ("b", "p", 2),
        ("c", "q", 1),
    ]
