"""`plan --format jsonl` writes its lines from fragments encoded once per prompt and size: they
must be exactly the per-task encoding of the task list every other command uses."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.manifest import Manifest, check_file
from runner.plan import expand, jsonl_lines
from runner.report import dumps
from runner.shard import Shard
from tests.helpers import EXAMPLES, run_cli

RICH = """\
version: 1
name: rich-one
resolution: 4K
repeat: 2
metadata: {team: "ünï \\"q\\"", n: 1.5, ok: true, nested: {z: [1, null], a: x}}
callback_url: https://example.com/hook?a=1&b=2
sizes: ['16:9', 1:1@1K, {size: 2048x1024}, {aspect_ratio: '9:21'}, 1024x640]
prompts:
  - id: First.one
    prompt: "tab\\there, newline\\n, quote \\" and backslash \\\\ and 😀 and \\u2028"
  - {id: b, prompt: plain, repeat: 1, metadata: {team: other}, callback_url: http://x.org/y}
  - id: c
    prompt: own sizes
    resolution: 1K
    sizes: [{aspect_ratio: '2:1', resolution: 2K}, '3:2']
"""


def manifests_of(*paths: Path) -> list[Manifest]:
    out = []
    for path in paths:
        cf = check_file(str(path))
        assert cf.manifest is not None, [d.text() for d in cf.diagnostics]
        out.append(cf.manifest)
    return out


def reference(manifests: list[Manifest], keep: Callable[[str], bool] | None = None) -> list[str]:
    return [dumps(t.as_json()) for t in expand(manifests) if keep is None or keep(t.out_task_id)]


def test_lines_equal_the_per_task_encoding_for_the_examples_and_a_rich_manifest(
    write: Callable[..., Path],
) -> None:
    manifests = manifests_of(*sorted(EXAMPLES.glob("*.yaml")), write(RICH))
    expected = reference(manifests)
    assert len(expected) > 30
    assert list(jsonl_lines(manifests)) == expected
    shard = Shard(2, 3)
    assert list(jsonl_lines(manifests, shard.contains)) == reference(manifests, shard.contains)


def test_plan_jsonl_through_the_cli_with_a_shard(write: Callable[..., Path]) -> None:
    path = write(RICH)
    whole = run_cli("plan", "--format", "jsonl", str(path))
    assert whole.exit_code == 0, whole.stderr
    # split("\n"), not splitlines(): a prompt may hold U+2028, which JSON leaves unescaped.
    lines = whole.stdout.split("\n")[:-1]
    assert lines == reference(manifests_of(path))
    parts = [run_cli("plan", "--format", "jsonl", "--shard", f"{i}/2", str(path)) for i in (1, 2)]
    shards = [p.stdout.split("\n")[:-1] for p in parts]
    assert all(shards) and sorted(shards[0] + shards[1]) == sorted(lines)


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != ""),
    metadata=st.none() | st.dictionaries(st.text(min_size=1, max_size=6), json_value, max_size=4),
    repeat=st.integers(1, 3),
)
def test_lines_equal_the_per_task_encoding_for_any_text_and_metadata(
    prompt: str, metadata: dict[str, Any] | None, repeat: int
) -> None:
    doc: dict[str, Any] = {
        "version": 1,
        "name": "prop",
        "sizes": ["1:1@2K", "2048x1152", {"aspect_ratio": "21:9"}],
        "prompts": [{"id": "p", "prompt": prompt, "repeat": repeat}],
    }
    if metadata is not None:
        doc["metadata"] = metadata
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.yaml"
        # JSON is YAML: the text reaches the manifest exactly as generated.
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        cf = check_file(str(path))
        if cf.manifest is None:  # e.g. a text with characters YAML refuses
            return
        assert list(jsonl_lines([cf.manifest])) == reference([cf.manifest])
