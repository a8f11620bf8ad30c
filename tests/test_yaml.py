"""YAML as people write it: unquoted values, repeated keys, odd encodings, hostile files."""

from __future__ import annotations

import codecs
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import InputError
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
    path = write("\n".join(lines) + "\n")
    start = time.process_time()  # CPU, not wall time: other processes' load does not count
    msg = only_error(path)
    assert "alias bomb" in msg
    assert time.process_time() - start < 10  # generous: the point is it ends at all


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


def test_a_mapping_merging_itself_is_refused_not_a_crash(write: Callable[..., Path]) -> None:
    top = "version: 1\nname: t\nsizes: ['1:1']\nx: &x {<<: *x}\nprompts: [{id: a, prompt: p}]\n"
    assert "'<<' merge refers to the mapping it is part of" in only_error(write(top, "a.yaml"))
    via_prompt = "version: 1\nname: t\nsizes: ['1:1']\nprompts:\n  - &p {<<: *p, id: a, prompt: p}\n"
    assert ":5:5:" in only_error(write(via_prompt, "b.yaml"))
    indirect = "a: &a {b: &b {<<: *a}}\n"
    assert "recursive anchor" in only_error(write(indirect, "c.yaml"))


def _merge_bomb(base: str, levels: int = 10, width: int = 10) -> str:
    lines = ["version: 1", "name: t", "sizes: ['1:1']", f"x0: &a0 {base}"]
    for i in range(1, levels + 1):
        lines.append(f"x{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * width) + "]}")
    lines.append(f"prompts: [{{<<: *a{levels}, id: a, prompt: p}}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("base", ["{}", "{k: [1, 2, 3]}"])
def test_a_merge_bomb_is_answered_in_well_under_a_second(write: Callable[..., Path], base: str) -> None:
    path = write(_merge_bomb(base))
    start = time.process_time()  # CPU, not wall time: other processes' load does not count
    checked = check_file(str(path))
    assert time.process_time() - start < 0.5  # 10^10 merges if each were expanded
    assert checked.manifest is None  # the x0..x10 keys are unknown; the point is it answers


def test_merged_keys_keep_their_positions_and_explicit_keys_win(write: Callable[..., Path]) -> None:
    path = write("""
        version: 1
        name: t
        sizes: ['1:1']
        prompts:
          - &base {id: a, prompt: p, repeat: 2}
          - {id: b, <<: [*base, {prompt: q, repeat: 3, resolution: 4k}]}
    """)
    checked = check_file(str(path))
    errors = [d.text() for d in checked.diagnostics if d.severity == "error"]
    # the merged bad value is reported where it is written, under the merging prompt's path
    assert len(errors) == 1 and ":6:60: error: $.prompts[1].resolution:" in errors[0]
    ok = write(str(path.read_text()).replace("4k", "4K"), "ok.yaml")
    manifest = check_file(str(ok)).manifest
    assert manifest is not None
    assert [(p.id, p.text, p.repeat) for p in manifest.prompts] == [("a", "p", 2), ("b", "p", 2)]


@pytest.mark.parametrize(
    ("value", "tag"),
    [("!!bool yes", "!!bool"), ("!!bool maybe", "!!bool"), ("!!null foo", "!!null"), ("!!int '3'", "!!int")],
)
def test_explicit_tags_are_refused_with_the_position(
    write: Callable[..., Path], value: str, tag: str
) -> None:
    msg = only_error(write(CAT + f"description: {value}\n"))
    assert f":7:14: error: $.description: the tag {tag} is not supported; write the value plainly" in msg


def test_str_tag_is_honoured_exactly_and_redundant_tags_change_nothing(write: Callable[..., Path]) -> None:
    path = write(
        "version: 1\nname: t\nsizes: ['1:1']\nrepeat: !!int 2\nprompts: [{id: !!str 12, prompt: p}]\n"
    )
    checked = check_file(str(path))
    assert checked.manifest is not None
    assert checked.manifest.prompts[0].id == "12" and checked.manifest.prompts[0].repeat == 2


@pytest.mark.parametrize("text", [".5e3", "-.5E+3", "5e2", "1.5", "500."])
def test_yaml_12_floats_are_floats(write: Callable[..., Path], text: str) -> None:
    from runner.yamlio import load_text

    assert load_text(f"x: {text}\n", "m.yaml").data == {"x": float(text)}


def test_a_float_where_an_integer_is_expected_is_an_error_not_a_crash(write: Callable[..., Path]) -> None:
    msg = only_error(
        write("version: 1\nname: t\nsizes: ['1:1']\nrepeat: 2.0\nprompts: [{id: a, prompt: p}]\n")
    )
    assert ":4:9: error: $.repeat: expected an integer, got number 2.0" in msg


def test_a_reused_anchor_says_which_and_where(write: Callable[..., Path]) -> None:
    msg = only_error(write("version: 1\nname: t\nsizes: &a ['1:1']\nprompts: &a [{id: a, prompt: p}]\n"))
    assert ":4:10: error: YAML syntax error: anchor '&a' is defined twice (first at line 3:8)" in msg


@pytest.mark.parametrize(
    "text",
    ["prompts:\n\t- {id: a, prompt: p}\n", "prompts:\n  - id: a\n\t  prompt: p\n"],
)
def test_tabs_say_tabs(write: Callable[..., Path], text: str) -> None:
    msg = only_error(write("version: 1\nname: t\nsizes: ['1:1']\n" + text))
    assert "tabs cannot indent YAML; use spaces" in msg


def test_a_trailing_newline_does_not_slip_through_a_pattern(write: Callable[..., Path]) -> None:
    path = write(
        'version: 1\nname: "t\\n"\nsizes: ["1:1\\n", "2048x1152\\n"]\nprompts: [{id: "a\\n", prompt: p}]\n'
    )
    errors = {d.json_path for d in check_file(str(path)).diagnostics if d.severity == "error"}
    assert errors == {"$.name", "$.sizes[0]", "$.sizes[1]", "$.prompts[0].id"}


def test_an_over_long_prompt_says_how_long(write: Callable[..., Path]) -> None:
    msg = only_error(
        write(f"version: 1\nname: t\nsizes: ['1:1']\nprompts: [{{id: a, prompt: {'x' * 32_005}}}]\n")
    )
    assert "$.prompts[0].prompt: the prompt is 32,005 characters; at most 32,000" in msg


def test_a_tagged_key_is_refused_too(write: Callable[..., Path]) -> None:
    msg = only_error(write(CAT + "!!null description: x\n"))
    assert ":7:1: error: $: the tag !!null is not supported" in msg


def test_the_non_specific_tag_makes_text_as_yaml_12_says(write: Callable[..., Path]) -> None:
    # `! 12` is the string "12" (PyYAML would read the integer 12, an error for an id).
    path = write(
        "version: 1\nname: ! 2026\ndescription: é\nsizes: ['1:1']\n"
        "prompts: [{id: &n ! 12, prompt: ! true}, {id: ! 13, prompt: !\n    null}]\n"
    )
    checked = check_file(str(path))
    assert [d.text() for d in checked.diagnostics if d.severity == "error"] == []
    assert checked.manifest is not None
    assert checked.manifest.name == "2026"
    assert [(p.id, p.text) for p in checked.manifest.prompts] == [("12", "true"), ("13", "null")]


def test_the_non_specific_tag_on_plain_values_gives_strings(write: Callable[..., Path]) -> None:
    from runner.yamlio import load_text

    text = "a: é\nb: ! 12\nc: &x ! true\nd: ! &y 1.5\ne: [! 0x1F, !  null, 3]\nf: !\n  7\ng: *x\nh: 12\n"
    assert load_text(text, "m.yaml").data == {
        "a": "é",
        "b": "12",
        "c": "true",
        "d": "1.5",
        "e": ["0x1F", "null", 3],
        "f": "7",
        "g": "true",
        "h": 12,
    }


@pytest.mark.parametrize("number", ["9" * 5000, "0x" + "f" * 50_000])
def test_a_huge_integer_is_an_error_at_its_place_not_a_crash(write: Callable[..., Path], number: str) -> None:
    msg = only_error(
        write(f"version: 1\nname: t\nsizes: ['1:1']\nrepeat: {number}\nprompts: [{{id: a, prompt: p}}]\n")
    )
    assert f":4:9: error: $.repeat: a number of {len(number):,} digits is too large" in msg


def test_a_control_character_and_an_undefined_alias_are_named(write: Callable[..., Path]) -> None:
    msg = only_error(write(CAT.replace("cat\n", "c\x07at\n")))
    assert ":5:10: error: not readable as YAML: the control character U+0007 is not allowed in YAML" in msg
    msg = only_error(write("version: 1\nname: t\nsizes: ['1:1']\nprompts: [*cats]\n"))
    assert ":4:11: error: YAML syntax error: alias '*cats' names no anchor defined before it" in msg


def test_a_file_of_too_many_values_is_refused_fast_and_small(write: Callable[..., Path]) -> None:
    # 600,000 keys in 7 MB: building the node graph first took 6 s and 480 MB.
    import resource

    from runner.yamlio import load_text

    text = CAT + "".join(f"k{i}: {i}\n" for i in range(600_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()  # CPU, not wall time: other processes' load does not count
    with pytest.raises(InputError, match=r"m\.yaml:\d+:\d+: more than 500,000 values"):
        load_text(text, "m.yaml")
    assert time.process_time() - started < 3
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB


def test_a_byte_order_mark_inside_the_file_is_named(write: Callable[..., Path]) -> None:
    msg = only_error(write("version: 1\nname: t\nsizes: ['1:1']\n\ufeffprompts: [{id: a, prompt: p}]\n"))
    assert ":4:1: error: YAML syntax error: an invisible byte-order mark (U+FEFF) stands inside" in msg


def test_plain_values_read_by_the_yaml_12_rules_whatever_they_start_with() -> None:
    # The resolver answers "text" at once for a first character no number, bool or null can
    # start with; every first character must still give what the full rules give.
    from yaml.nodes import ScalarNode
    from yaml.resolver import BaseResolver

    from runner.yamlio import load_text
    from runner.yamlscalar import Core12Resolver

    full = Core12Resolver()
    words = ["x", "1", "1.5", "true", "False", "null", "~", ".inf", ".5", "-3", "+7", "0x1f", "0o7"]
    values = words + [c + "ab" for c in "aAzZ_$é🐱-+.~0fFnNtT"]
    for v in [*values, "", "%ab", "@ab"]:
        expected = BaseResolver.resolve(full, ScalarNode, v, (True, False))  # type: ignore[no-untyped-call]
        assert full.resolve(ScalarNode, v, (True, False)) == expected, v
    doc = load_text("".join(f"k{i}: {v}\n" for i, v in enumerate(values)), "t.yaml")
    assert doc.data["k0"] == "x" and doc.data["k1"] == 1 and doc.data["k3"] is True
    assert doc.data["k5"] is None and doc.data["k11"] == 31
    assert all(doc.data[f"k{i}"] == v for i, v in enumerate(values) if i >= len(words))
    assert doc.marks[("k20",)] == (21, 6)


def test_an_anchored_empty_value_is_null_whatever_the_next_line_starts_with() -> None:
    # The next line's `!` once read as a non-specific tag on the empty value, making it "".
    from runner.yamlio import load_text

    assert load_text("a:\n  - &x\n! b: 1\nc: *x\n", "m.yaml").data == {"a": [None], "b": 1, "c": None}


def test_a_self_merging_anchor_under_a_refused_key_is_refused_where_it_is_used(
    write: Callable[..., Path],
) -> None:
    # The value of a refused key is read past, not built; its anchor still recurses when used.
    msg = only_error(write("~: &n0 {<<: [*n0, {m: 1}]}\nq: *n0\n"))
    assert ":1:4:" in msg and "recursive anchor" in msg


# Characters and pieces of YAML the bound must hold for beyond the basic indicators: every
# line break libyaml counts, tabs, comments, directives, document markers, explicit keys.
_BOUND_PIECES = [
    *"ab1 :-?,[]{}\n\r&*!'\"|>#~.\t%@\\",
    *["\x85", "\u2028", "\u2029", "\ufeff", "--- ", "...\n", "%YAML 1.2\n", "%TAG ! !x\n", "? ", ": "],
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_BOUND_PIECES), max_size=80).map("".join))
def test_the_bound_on_values_that_skips_counting_holds_for_any_text(text: str) -> None:
    # Files the bound calls small are not counted before building: it must never undercount,
    # by libyaml's reading (what runs) or PyYAML's own.
    import yaml

    from runner.yamlsyntax import VALUE_EVENTS, events, most_values

    for next_event in (events(text), yaml.SafeLoader(text).get_event):
        values = 0
        try:
            while (event := next_event()) is not None and type(event) is not yaml.StreamEndEvent:
                values += type(event) in VALUE_EVENTS
        except yaml.YAMLError:
            pass
        assert values <= most_values(text)


def test_a_merge_source_merged_deeper_than_where_it_was_built_is_still_bounded(
    write: Callable[..., Path],
) -> None:
    # A merge source is built once, where it is first merged. Each anchor of this chain merges
    # the previous one 55 levels down: the metadata nested 2,000 levels deep passed validate
    # and `run` died on it (RecursionError while writing the request: exit 70).
    lines = ["version: 1", "name: t", "sizes: ['1:1']", "prompts: [{id: a, prompt: p}]", "metadata:"]
    lines.append("  a0: &a0 {x: 1}")
    for i in range(1, 40):
        lines.append(f"  s{i}: {{<<: *a{i - 1}}}")
        lines.append(f"  a{i}: &a{i} " + "{k: " * 55 + f"{{<<: *a{i - 1}}}" + "}" * 55)
    msg = only_error(write("\n".join(lines) + "\n"))
    assert ":10:236: error: nested deeper than 64 levels" in msg  # at `*a1` where a2 merges it


def test_a_merge_source_meets_the_same_depth_bound_built_or_reused() -> None:
    from runner.yamlio import MAX_DEPTH, load_text

    def merged_at(depth: int, height: int, *, reused: bool) -> str:
        source = "{k: " * (height - 1) + "x" + "}" * (height - 1)
        first = "s: {<<: *a}\n" if reused else ""  # built here, at depth 1, then reused
        return f"a: &a {{k: {source}}}\n{first}b: " + "[" * (depth - 1) + "{<<: *a}" + "]" * (depth - 1)

    for reused in (False, True):
        assert load_text(merged_at(40, 23, reused=reused), "m.yaml").data["b"]
        with pytest.raises(InputError, match=f"nested deeper than {MAX_DEPTH} levels"):
            load_text(merged_at(40, 24, reused=reused), "m.yaml")


@pytest.mark.parametrize("level", ["{<<: ", "{<<: [", "{<<: [{}, "])
def test_merges_nested_in_merges_are_bounded_not_a_crash(level: str) -> None:
    # Merge sources nest no data, but each is read inside the one before: 3,000 of them
    # overflowed Python's stack (RecursionError, exit 70).
    from runner.yamlio import load_text

    close = "}" if level == "{<<: " else "]}"
    with pytest.raises(InputError, match=r"m\.yaml:1:\d+: nested deeper than 64 levels"):
        load_text("a: " + level * 3000 + "{x: 1}" + close * 3000 + "\n", "m.yaml")


def test_a_tagged_merge_key_is_the_text_it_says() -> None:
    # `!` and `!!str` make text everywhere: `! <<` is the key "<<", not a merge.
    from runner.yamlio import load_text

    assert load_text("a: {! <<: {x: 1}}\n", "m.yaml").data == {"a": {"<<": {"x": 1}}}
    assert load_text("a: {!!str <<: x, '<<': y}\n", "m.yaml").problems[0].message.startswith("key '<<'")
    assert load_text("a: {!!merge <<: {x: 1}, <<: {y: 2}}\n", "m.yaml").data == {"a": {"x": 1, "y": 2}}


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r", "\x85", "\u2028"])
def test_unreadable_characters_are_placed_on_their_line_whatever_ends_lines(
    write: Callable[..., Path], newline: str
) -> None:
    # libyaml says where a control character is in UTF-8 bytes, and counts CR, NEL and U+2028
    # as line breaks: the 'ä' and '🐱' before it moved it right, or to a line not in the file.
    head = ["version: 1", "name: Kätzchen 🐱", "sizes: ['1:1']"]
    control = newline.join([*head, "prompts: [{id: a, prompt: p\x07}]", ""])
    assert ":4:28: error: not readable as YAML: the control character U+0007" in only_error(write(control))
    tab = newline.join([*head, "prompts:", "\t- {id: a, prompt: p}", ""])
    assert ":5:1: error: YAML syntax error: tabs cannot indent YAML" in only_error(write(tab))
    bom = newline.join([*head, "\ufeffprompts: [{id: a, prompt: p}]", ""])
    assert ":4:1: error: YAML syntax error: an invisible byte-order mark" in only_error(write(bom))
    latin1 = newline.join([*head, "prompts: [{id: a, prompt: Kätzchen}]", ""]).encode()
    latin1 = latin1.replace("Kätzchen}".encode(), b"K\xe4tzchen}")
    assert ":4:28: error: byte 0xE4 is not UTF-8" in only_error(write(latin1))


def test_a_lone_surrogate_is_refused_with_its_place() -> None:
    # Files cannot hold one (decoding refuses it); text given in process can.
    from runner.yamlio import load_text

    with pytest.raises(InputError, match=r"m\.yaml:2:5: not readable as YAML: U\+D800 is half of a"):
        load_text("a: 1\nb: x\ud800\n", "m.yaml")


def _load_cost(text: str) -> tuple[str, float, int]:
    """The message, CPU seconds and peak memory (KiB) of loading Python expression `text`,
    in a process of its own: this one's peak is other tests' too. The peak is /proc's VmHWM:
    ru_maxrss keeps the peak of the process it was forked from."""
    import subprocess
    import sys

    script = (
        "import re, time\n"
        "from runner.errors import InputError\n"
        "from runner.yamlio import load_text\n"
        f"text = {text}\n"
        "started = time.process_time()\n"
        "try:\n"
        "    load_text(text, 'm.yaml')\n"
        "    print('read')\n"
        "except InputError as e:\n"
        "    print(e)\n"
        "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())\n"
        "print(time.process_time() - started, peak[1] if peak else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    message, figures = out.splitlines()
    cpu, peak_kib = figures.split()
    return message, float(cpu), int(peak_kib)


_MERGED_KEYS = "'a: &a {' + ','.join(f'k{i}: v' for i in range(1000)) + '}\\n'"


@pytest.mark.parametrize(
    ("text", "cpu", "mib", "before"),
    [
        # 240,000 items aliased twice: a position was kept per item
        ("'a: &a [' + 'x,' * 240_000 + ']\\nb: *a\\nc: *a\\n'", 1.2, 130, "2.0 s, 220 MB"),
        # billion laughs: ten lists of ten aliases of the one before
        (
            "'a0: &a0 [' + ', '.join(['x'] * 10) + ']\\n'"
            " + ''.join(f'a{i}: &a{i} [' + ', '.join([f'*a{i - 1}'] * 10) + ']\\n' for i in range(1, 10))",
            0.5,
            80,
            "1.0 s, 120 MB",
        ),
        # a 1,000-key mapping merged into 2,000: its positions were copied for each
        (_MERGED_KEYS + " + 'l: [' + ','.join(['{<<: *a}'] * 2000) + ']'", 0.3, 80, "0.6 s, 130 MB"),
    ],
    ids=["wide-list", "laughs", "merged-keys"],
)
def test_bombs_are_refused_fast_and_small(text: str, cpu: float, mib: int, before: str) -> None:
    message, used, peak_kib = _load_cost(text)
    assert "more than 500,000 values after expanding aliases" in message
    assert used < cpu and peak_kib < mib * 1024, f"{used:.2f} s, {peak_kib // 1024} MiB; before: {before}"


def test_positions_of_list_items_are_worked_out_when_asked() -> None:
    from runner.yamlio import load_text

    doc = load_text("a: [x, 1, 'y', !t z, &q w, *q]\nb:\n  - - v\n", "m.yaml")
    assert doc.data == {"a": ["x", 1, "y", "z", "w", "w"], "b": [["v"]]}
    # an alias's value is placed where its anchor is, as a value of the anchored text
    assert [doc.marks[("a", i)] for i in range(6)] == [(1, 5), (1, 8), (1, 11), (1, 16), (1, 22), (1, 22)]
    assert doc.marks[("b", 0, 0)] == (3, 7)
    assert doc.problems[0].text() == (
        "m.yaml:1:16: error: $.a[3]: the tag !t is not supported; write the value plainly"
        " (imgbatch reads no tags: quote the value if it is text)"
    )


def _random_document(rng: random.Random) -> str:
    """A small YAML document mixing what the builder treats apart: anchors, aliases (also as
    keys), merges and merge lists, tags, empty values, repeated keys, block and flow styles."""
    anchors: list[str] = []

    def props() -> str:
        out = ""
        if rng.random() < 0.25:
            anchors.append(f"n{len(anchors)}")
            out += f"&{anchors[-1]} "
        return out + (rng.choice(["!!map ", "!!seq ", "! ", "!t ", "!!str "]) if rng.random() < 0.1 else "")

    def key() -> str:
        if anchors and rng.random() < 0.1:
            return f"*{rng.choice(anchors)} "
        return rng.choice(
            ["k", "j", "<<", "<<", "'<<'", "! <<", f"&m{rng.randrange(99)} key", "!!str s", "1", "~"]
        )

    def flow(depth: int) -> str:
        r = rng.random()
        if depth > 3 or r < 0.4:
            if anchors and rng.random() < 0.25:
                return f"*{rng.choice(anchors)}"
            return props() + rng.choice(
                ["a", "1", "2.5", "true", "null", "", "'q'", '"d"', "x y", "! 4", "!!int 5"]
            )
        if r < 0.7:
            return props() + "[" + ", ".join(flow(depth + 1) for _ in range(rng.randrange(4))) + "]"
        return props() + "{" + ", ".join(f"{key()}: {flow(depth + 1)}" for _ in range(rng.randrange(4))) + "}"

    def block(depth: int, indent: str) -> str:
        r = rng.random()
        if depth > 3 or r < 0.3:
            return " " + flow(depth)
        head = " " + props().strip() if rng.random() < 0.3 else ""
        if r < 0.6:
            return head + "".join(
                f"\n{indent}-" + block(depth + 1, indent + "  ") for _ in range(rng.randint(1, 3))
            )
        return head + "".join(
            f"\n{indent}{key()}:" + block(depth + 1, indent + "  ") for _ in range(rng.randint(1, 4))
        )

    return block(0, "").lstrip() + "\n"


def test_a_read_without_positions_gives_what_a_read_with_all_of_them_gives() -> None:
    # A valid read places only some values and works out the rest when asked, by reading the
    # text again: both reads must agree on everything else, whichever way a value is reached.
    from runner.yamlio import _build, load_text

    rng = random.Random(20261125)
    compared = 0
    for _ in range(600):
        text = _random_document(rng)
        try:
            doc = load_text(text, "m.yaml")
        except InputError:
            continue
        full = _build(text, "m.yaml", all_marks=True)
        assert repr(doc.data) == repr(full.data), text
        assert [d.text() for d in doc.problems] == [d.text() for d in full.problems], text
        assert (doc.marks, doc.key_marks) == (full.marks, full.key_marks), text
        compared += 1
    assert compared > 200


def test_a_mapping_of_keys_without_values_just_under_the_budget_reads_fast_and_small() -> None:
    # {k0, k1, ...}: 249,999 keys and as many nulls. Each null took the general path (a
    # position and the resolver's regular expressions): 2.2 s and 127 MB.
    message, used, peak_kib = _load_cost("'{' + ','.join(f'k{i}' for i in range(249_999)) + '}'")
    assert message == "read"
    assert used < 1.5 and peak_kib < 90 * 1024, f"{used:.2f} s, {peak_kib // 1024} MiB"


def test_empty_plain_values_are_null_and_placed_when_asked() -> None:
    from runner.yamlio import load_text

    doc = load_text("a:\nb: ''\nc: [x, '']\nd:\n  -\n  - ''\n", "m.yaml")
    assert doc.data == {"a": None, "b": "", "c": ["x", ""], "d": [None, ""]}
    assert doc.marks[("a",)] == (1, 3) and doc.marks[("d", 0)] == (5, 4) and doc.marks[("d", 1)] == (6, 5)
