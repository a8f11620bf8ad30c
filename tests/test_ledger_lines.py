"""A ledger line ends at "\\n" only: prompts may hold characters Python also counts as line
breaks (U+2028, U+2029, U+0085), which JSON writes unescaped."""

from __future__ import annotations

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
