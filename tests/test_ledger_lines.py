"""A ledger line ends at "\\n" only: prompts may hold characters Python also counts as line
breaks (U+2028, U+2029, U+0085), which JSON writes unescaped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.project_util import Project


@pytest.mark.parametrize("escape", ["\\L", "\\P", "\\N"])
def test_a_prompt_with_a_unicode_line_separator_is_read_back(tmp_path: Path, escape: str) -> None:
    p = Project(tmp_path)
    p.write(f'version: 1\nname: seps\nsizes: ["1:1@1K"]\nprompts:\n  - {{id: a, prompt: "one{escape}two"}}\n')
    first = p.run()
    assert first.exit_code == 0, first.stderr
    assert len(p.ledger.read_text(encoding="utf-8").split("\n")) == 2  # one record, one "\n"
    again = p.run()
    assert again.exit_code == 0, again.stderr
    assert again.json()["submitted"] == 0
    plan = p.plan("--exit-code")
    assert plan.exit_code == 0, plan.stderr
    assert "  = done  seps.a." in plan.stdout


def test_values_json_accepts_are_read_as_json_reads_them_and_kept_through_a_rewrite(tmp_path: Path) -> None:
    # The fast decoder refuses NaN and numbers past a float (the standard library then reads
    # the line, keeping numbers standard: runner/jsonnum.py) and must not turn an integer past
    # 64 bits into a float, even when the record is rewritten.
    from runner.ledger import Ledger
    from runner.ledgerline import loads_line

    big = 123456789012345678901234567890
    lines = [
        f'{{"out_task_id": "a", "status": "completed", "metadata": {{"big": {big}, "neg": -{big}}}}}',
        '{"out_task_id": "b", "status": "failed", "metadata": {"nan": NaN, "inf": 1e400, "x": 0.1}}',
        '{"out_task_id": "c", "status": "pending", "prompt": "\\ud83d\\ude00 \\u2028 caf\\u00e9"}',
    ]
    path = tmp_path / "l.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = Ledger.open(path, write=False).records
    assert repr(read) == repr({r["out_task_id"]: r for r in map(loads_line, lines)})
    assert read["b"]["metadata"] == {"nan": None, "inf": 10**400, "x": 0.1}
    ledger = Ledger.open(path, write=True)
    ledger.put({**ledger.records["a"], "status": "failed"})
    ledger.close()
    again = Ledger.open(path, write=False).records
    assert again["a"]["metadata"] == {"big": big, "neg": -big} and again["a"]["status"] == "failed"
    assert again["c"]["prompt"] == "\U0001f600 \u2028 café"


@pytest.mark.parametrize(
    ("value", "why"),
    [("1" * 4301, "an integer too long to read"), ("[" * 100_000 + "]" * 100_000, "nested too deeply")],
)
def test_a_line_python_cannot_read_is_named_by_line_not_an_internal_error(
    tmp_path: Path, value: str, why: str
) -> None:
    # Valid JSON both decoders give up on (json's 4,300-digit limit, the stack): the user gets
    # the line and the fix, exit 2, and the ledger as it was, for run and status alike.
    p = Project(tmp_path)
    p.write('version: 1\nname: big\nsizes: ["1:1@1K"]\nprompts:\n  - {id: a, prompt: "x"}\n')
    assert p.run().exit_code == 0
    good = p.ledger.read_text(encoding="utf-8")
    broken = good + f'{{"out_task_id": "z", "status": "completed", "metadata": {{"n": {value}}}}}\n'
    p.ledger.write_text(broken, encoding="utf-8")
    for result in (p.cli("status", "--ledger", str(p.ledger), str(p.manifests)), p.run()):
        assert result.exit_code == 2, result.stderr
        assert f"{p.ledger}:2:1: not a ledger record ({why})" in result.stderr
        assert "internal error" not in result.stderr
    assert p.ledger.read_text(encoding="utf-8") == broken


def _parsed(line: str, decode: Any) -> tuple[str, str]:
    from runner.errors import LedgerError
    from runner.ledgerline import parse_line

    try:
        return ("record", repr(parse_line(line, Path("l.jsonl"), 7, decode)))
    except LedgerError as e:
        return ("error", f"{e} | {e.hint}")


_pieces = st.sampled_from(
    [
        '{"out_task_id": "a", "status": "completed"',
        ', "x": ',
        "}",
        "{",
        "[",
        "]",
        ",",
        ":",
        '"',
        "\\",
        "\\ud800",
        "\\udc00",
        "\\ud83d\\ude00",
        "1",
        "-0",
        ".5",
        "e",
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "9" * 30,
        "true",
        "null",
        " ",
        "\t",
        "\r",
        "\x00",
        "\x1f",
        "\ufeff",
        "\u2028",
        "é",
        '"a"',
        '"status"',
    ]
)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(10**80), 10**80) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_pieces, max_size=12).map("".join)
    | _values.map(json.dumps)
    | _values.map(
        lambda v: json.dumps(
            {"out_task_id": "a", "status": "completed", "metadata": v, "x": v}, ensure_ascii=False
        )
    )
)
def test_the_fast_decoder_reads_every_line_as_json_does(line: str) -> None:
    # msgspec decides first; on any line the record, or the message and fix, are json's (with
    # numbers kept standard, runner/jsonnum.py).
    from runner.ledgerline import line_decoder, loads_line

    assert _parsed(line, line_decoder()) == _parsed(line, loads_line)
