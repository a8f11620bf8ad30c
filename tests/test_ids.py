"""out_task_ids are a contract with every ledger in git: pinned by golden values, and
properties checked with hypothesis (formatting and order never change an id)."""

from __future__ import annotations

import hashlib
import json
import random
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.ids import attempt_id, task_id
from runner.manifest import check_file
from runner.plan import expand
from runner.schema import size_table

GOLDEN = [
    (
        "window-cat",
        "orange-cat",
        {
            "prompt": "한 마리의 주황색 고양이가 창턱에 앉아 석양을 바라보는 수채화 스타일",
            "aspect_ratio": "16:9",
            "resolution": "2K",
        },
        0,
        "window-cat.orange-cat.0d921a06f10f7136b836",
    ),
    (
        "custom-sizes",
        "banner",
        {"prompt": "x", "size": "2048x1152"},
        3,
        "custom-sizes.banner.e1be04730e8ae6a90a4a",
    ),
    (
        "a-very-long-manifest-name-for-testing",
        "a.very_long-prompt.id.that.goes.on",
        {"prompt": "x", "aspect_ratio": "1:1", "resolution": "4K"},
        0,
        "a-very-long-manifest-name-for-testin.d38c8159c519634a4592",
    ),
]
ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def test_golden_ids() -> None:
    for name, pid, params, r, expected in GOLDEN:
        assert task_id(name, pid, params, r) == expected


def test_the_documented_algorithm_gives_the_same_ids() -> None:
    for name, pid, params, r, expected in GOLDEN:
        payload = json.dumps(
            {"v": 1, "manifest": name, "prompt_id": pid, "params": params, "repeat": r},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        digest = hashlib.sha256(payload).hexdigest()[:20]
        assert f"{(name + '.' + pid)[:36]}.{digest}" == expected


def test_retry_ids_stay_within_the_upstream_alphabet_and_length() -> None:
    longest = task_id("m" * 40, "p" * 64, {"prompt": "x"}, 99)
    assert ID_RE.match(longest)
    assert ID_RE.match(attempt_id(longest, 99))
    assert attempt_id(longest, 1) == longest


# --- properties -----------------------------------------------------------------------------

RATIOS = list(size_table().ratios)
TIERS = list(size_table().tiers)
ids_st = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
text_st = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Co")), min_size=1, max_size=40
).filter(lambda s: s.strip() != "")
size_st = st.one_of(
    st.tuples(st.sampled_from(RATIOS), st.sampled_from(TIERS)),
    st.sampled_from(["2048x2048", "3840x2160", "2048x1152", "1536x2048", "2688x1344"]),
)


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, object]:
    pids = draw(st.lists(ids_st, min_size=1, max_size=4, unique=True))
    return {
        "name": draw(st.from_regex(r"[a-z]{1,8}(-[a-z0-9]{1,5})?", fullmatch=True)),
        "repeat": draw(st.integers(1, 3)),
        "sizes": draw(st.lists(size_st, min_size=1, max_size=4, unique=True)),
        "prompts": [{"id": p, "prompt": draw(text_st)} for p in pids],
    }


def render(m: dict[str, object], rnd: random.Random) -> str:
    """The same manifest, written in one of many ways a person might write it."""

    def q(s: str) -> str:
        plain = re.fullmatch(r"[A-Za-z][A-Za-z ]*[A-Za-z]", s) is not None and s.lower() not in (
            "true",
            "false",
            "null",
        )
        if plain and rnd.random() < 0.5:
            return s
        escape_all = rnd.random() < 0.5  # YAML's \UXXXXXXXX escapes, or the characters as-is
        body = "".join(
            f"\\U{ord(c):08X}" if escape_all and ord(c) > 126 else ("\\" + c if c in '"\\' else c) for c in s
        )
        return f'"{body}"'

    def size(s: object) -> str:
        if isinstance(s, tuple):
            ratio, tier = s
            return rnd.choice(
                [
                    f"{{aspect_ratio: {ratio}, resolution: {tier}}}",
                    f"{{resolution: {tier}, aspect_ratio: '{ratio}'}}",
                    f"'{ratio}@{tier}'",
                    f'"{ratio}@{tier}"',
                ]
            )
        return rnd.choice([f"{{size: {s}}}", str(s), f"'{s}'"])

    sizes = list(m["sizes"])  # type: ignore[call-overload]
    rnd.shuffle(sizes)
    prompts = list(m["prompts"])  # type: ignore[call-overload]
    rnd.shuffle(prompts)
    size_lines = (
        ["sizes: [" + ", ".join(size(s) for s in sizes) + "]"]
        if rnd.random() < 0.5
        else ["sizes:"] + [f"  - {size(s)}  # a comment" for s in sizes]
    )
    prompt_lines = ["prompts:"]
    for p in prompts:
        if rnd.random() < 0.5:
            prompt_lines.append(f"  - {{prompt: {q(p['prompt'])}, id: {p['id']}}}")
        else:
            prompt_lines += [f"  - id: {p['id']}", "", f"    prompt: {q(p['prompt'])}"]
    blocks = [
        [f"version: {rnd.choice(['1', '0x1'])}"],
        [f"name: {q(str(m['name']))}"],
        [f"repeat: {m['repeat']}"],
        size_lines,
        prompt_lines,
    ]
    rnd.shuffle(blocks)
    return "# generated\n" + "\n".join(line for b in blocks for line in b) + "\n"


def ids_of(text: str) -> list[str]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.yaml"
        path.write_text(text, encoding="utf-8")
        checked = check_file(str(path))
        assert checked.manifest is not None, [x.text() for x in checked.diagnostics]
        return [t.out_task_id for t in expand([checked.manifest])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(), st.integers(0, 2**32), st.integers(0, 2**32))
def test_formatting_and_order_never_change_ids(m: dict[str, object], s1: int, s2: int) -> None:
    a, b = ids_of(render(m, random.Random(s1))), ids_of(render(m, random.Random(s2)))
    assert a == b
    assert all(ID_RE.match(i) for i in a)
    assert len(set(a)) == len(a)


@settings(max_examples=40, deadline=None)
@given(manifests(), st.integers(0, 2**32), st.data())
def test_changing_one_prompt_changes_only_its_ids(
    m: dict[str, object], seed: int, data: st.DataObject
) -> None:
    prompts: list[dict[str, str]] = m["prompts"]  # type: ignore[assignment]
    target = data.draw(st.sampled_from(prompts))
    new_text = data.draw(text_st.filter(lambda t: t != target["prompt"]))
    changed = {**m, "prompts": [{**p, "prompt": new_text} if p is target else p for p in prompts]}
    before = ids_of(render(m, random.Random(seed)))
    after = ids_of(render(changed, random.Random(seed)))
    prefix = f"{m['name']}.{target['id']}."[:36]
    of_target = {i for i in before if i.startswith(prefix)}
    assert of_target and not (of_target & set(after))  # every id of the changed prompt is new
    assert set(before) - of_target == set(after) - {i for i in after if i.startswith(prefix)}


@settings(max_examples=200, deadline=None)
@given(
    ids_st,
    ids_st,
    text_st,
    st.sampled_from([{"size": "2048x2048"}, {"aspect_ratio": "1:1", "resolution": "4K"}]),
    st.integers(1, 5),
)
def test_the_fast_hasher_equals_the_reference(
    name: str, pid: str, text: str, size: dict[str, str], repeats: int
) -> None:
    from runner.ids import ManifestHasher

    params = {"prompt": text, **size}
    hasher = ManifestHasher(name)
    # Another prompt first: the size's encoding is kept from it, under another dict of it.
    other = task_id(name, "other", {**params, "prompt": "another prompt"}, 0)
    assert hasher.ids("other", "another prompt", dict(size), 1) == [other]
    assert hasher.ids(pid, text, size, repeats) == [task_id(name, pid, params, r) for r in range(repeats)]


GOLDEN_MANIFEST = """\
version: 1
name: golden-plan
resolution: 2K
sizes: ['16:9', {size: 2048x1152}, {aspect_ratio: '1:1', resolution: 4K}]
prompts:
  - id: cat
    prompt: "한 마리의 주황색 고양이가 창턱에 앉아 \\"석양\\"을 바라보는 수채화 스타일"
  - id: a.very_long-prompt.id.that.goes.on.and.on
    prompt: 'emoji 🐱 and a tab\tand a backslash \\ here'
    repeat: 2
    sizes: ['3:2@1K']
"""


def test_a_manifest_plans_the_ids_its_ledgers_hold(tmp_path: Path) -> None:
    # The ids a run submits under, end to end from a file: quotes, backslashes, a tab, text
    # outside the BMP, a cut prefix, repeats, three kinds of size. Values from before the
    # planner's hashing was rewritten; a change here re-bills every user.
    path = tmp_path / "golden.yaml"
    path.write_text(GOLDEN_MANIFEST, encoding="utf-8")
    checked = check_file(str(path))
    assert checked.manifest is not None
    planned = [(t.out_task_id, t.size, t.repeat_index) for t in expand([checked.manifest])]
    assert planned == [
        ("golden-plan.a.very_long-prompt.id.th.07b07856d20c3be49fe9", "3:2@1K", 0),
        ("golden-plan.a.very_long-prompt.id.th.08abb8cc25bf8646f72f", "3:2@1K", 1),
        ("golden-plan.cat.858730ca4b1d060ac0eb", "16:9@2K", 0),
        ("golden-plan.cat.b27017f57b8459b1a2f0", "2048x1152", 0),
        ("golden-plan.cat.f0752cb113ecab7527b4", "1:1@4K", 0),
    ]
