"""s2dm_lightning/commands/__init__.py: the one table of subcommands, the top-level --help built from it."""

from __future__ import annotations

import ast
from importlib.util import find_spec

import pytest

from s2dm_lightning.commands import SUBCOMMANDS, main, usage


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_every_subcommand_names_a_module_with_main(name):
    """Read from the source, not imported: an optional subcommand's dependencies need not be installed."""
    spec = find_spec(f"s2dm_lightning.commands.{SUBCOMMANDS[name].module}")
    assert spec is not None and spec.origin, f"{name}: no module s2dm_lightning.commands.{SUBCOMMANDS[name].module}"
    tree = ast.parse(open(spec.origin).read())
    mains = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"]
    assert mains and len(mains[0].args.args) == 1, f"{spec.origin} has no main(argv)"


def test_help_has_one_line_per_subcommand(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert out.strip() == usage()
    rows = [line.split(maxsplit=1) for line in out.splitlines() if line.startswith("  ")]
    assert [row[0] for row in rows] == list(SUBCOMMANDS)
    assert [row[1] for row in rows] == [entry.help for entry in SUBCOMMANDS.values()]


def test_no_subcommand_prints_the_help_and_fails(capsys):
    with pytest.raises(SystemExit) as stop:
        main([])
    assert stop.value.code == 2 and "subcommands" in capsys.readouterr().err


def test_preprocess_help_is_its_own(capsys):
    main(["preprocess", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m s2dm_lightning preprocess --config CONFIG.yaml")
