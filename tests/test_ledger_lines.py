"""A ledger line ends at "\\n" only: prompts may hold characters Python also counts as line
breaks (U+2028, U+2029, U+0085), which JSON writes unescaped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    # The fast decoder refuses NaN and infinities (the standard library then reads the line)
    # and must not turn an integer past 64 bits into a float, even when the record is rewritten.
    from runner.ledger import Ledger

    big = 123456789012345678901234567890
    lines = [
        f'{{"out_task_id": "a", "status": "completed", "metadata": {{"big": {big}, "neg": -{big}}}}}',
        '{"out_task_id": "b", "status": "failed", "metadata": {"nan": NaN, "inf": 1e400, "x": 0.1}}',
        '{"out_task_id": "c", "status": "pending", "prompt": "\\ud83d\\ude00 \\u2028 caf\\u00e9"}',
    ]
    path = tmp_path / "l.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = Ledger.open(path, write=False).records
    assert repr(read) == repr({r["out_task_id"]: r for r in map(json.loads, lines)})
    ledger = Ledger.open(path, write=True)
    ledger.put({**ledger.records["a"], "status": "failed"})
    ledger.close()
    again = Ledger.open(path, write=False).records
    assert again["a"]["metadata"] == {"big": big, "neg": -big} and again["a"]["status"] == "failed"
    assert again["c"]["prompt"] == "\U0001f600 \u2028 café"
