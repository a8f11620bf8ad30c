"""Positive and negative example files, picked up automatically.

A negative example declares what it expects on its first lines:
    # expect: LINE:COL text that the error message contains
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.manifest import check_file
from tests.helpers import EXAMPLES, TEST_EXAMPLES

POSITIVE = sorted(EXAMPLES.glob("*.yaml")) + sorted((TEST_EXAMPLES / "valid").glob("*.yaml"))
NEGATIVE = sorted((TEST_EXAMPLES / "invalid").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.+)$")


def test_there_are_examples() -> None:
    assert len(list(EXAMPLES.glob("*.yaml"))) >= 3
    assert len(NEGATIVE) >= 15


@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.name)
def test_positive_example_is_valid(path: Path) -> None:
    checked = check_file(str(path))
    errors = [d.text() for d in checked.diagnostics if d.severity == "error"]
    assert errors == []
    assert checked.manifest is not None


@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.name)
def test_positive_example_carries_the_editor_modeline(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")


@pytest.mark.parametrize("path", NEGATIVE, ids=lambda p: p.name)
def test_negative_example_reports_the_expected_error(path: Path) -> None:
    expects = [
        m.groups() for line in path.read_text(encoding="utf-8").splitlines() if (m := EXPECT.match(line))
    ]
    assert expects, f"{path.name} declares no '# expect:' line"
    checked = check_file(str(path))
    assert checked.manifest is None
    found = [(d.line, d.col, d.text()) for d in checked.diagnostics if d.severity == "error"]
    for line, col, text in expects:
        assert any((fl, fc) == (int(line), int(col)) and text in msg for fl, fc, msg in found), (
            f"no error at {line}:{col} containing {text!r}; got {found}"
        )
