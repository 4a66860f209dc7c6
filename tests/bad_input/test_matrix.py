"""docs/bad_input.md's table and tests/bad_input/ are one list: each row (its `case`) has exactly one test
named ``test_<case>`` in this folder, and each such test has its row."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "bad_input.md"


def _table_cases() -> list[str]:
    return re.findall(r"^\| `(\w+)` \|", TABLE.read_text(), flags=re.MULTILINE)


def _test_names() -> list[str]:
    names = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text())
        names += [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
    return names


def test_every_row_has_one_test_and_every_test_a_row() -> None:
    cases = _table_cases()
    assert len(cases) == len(set(cases)), f"cases listed twice in {TABLE.name}: {sorted({c for c in cases if cases.count(c) > 1})}"
    tests = _test_names()
    assert len(tests) == len(set(tests)), "two tests share a name in tests/bad_input/"
    expected = {f"test_{case}" for case in cases}
    assert not expected - set(tests), f"rows of {TABLE.name} without a test: {sorted(expected - set(tests))}"
    assert not set(tests) - expected, f"tests in tests/bad_input/ without a row: {sorted(set(tests) - expected)}"
    assert len(cases) == len(tests)
