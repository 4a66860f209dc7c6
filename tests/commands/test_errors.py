"""run_with_clear_errors: the error jsonargparse wrapped is printed alone, last; everything else is untouched."""

from __future__ import annotations

import pytest
from jsonargparse import ArgumentParser

from s2dm_lightning.commands.errors import CommandLineError, run_with_clear_errors, wrapped_cause


class Shape:
    """A base class for a Union-typed argument (like LightningCLI's ``model``)."""


class Square(Shape):
    def __init__(self, side: float = 1.0) -> None:
        if side <= 0:
            raise ValueError(f"shape.side must be > 0, got {side}")


def instantiate_square(side: float) -> None:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--shape", type=Shape | None)
    config = parser.parse_args([f"--shape={{'class_path': '{__name__}.Square', 'init_args': {{'side': {side}}}}}"])
    parser.instantiate_classes(config)


def test_the_wrapped_error_is_the_last_line_and_exit_status_is_2(capsys, monkeypatch):
    monkeypatch.delenv("S2DM_DEBUG", raising=False), monkeypatch.delenv("JSONARGPARSE_DEBUG", raising=False)
    with pytest.raises(ValueError, match="Union subtypes") as raw:
        instantiate_square(-1.0)
    assert isinstance(wrapped_cause(raw.value), ValueError) and "shape.side" in str(wrapped_cause(raw.value))
    with pytest.raises(SystemExit) as stop:
        run_with_clear_errors(lambda: instantiate_square(-1.0))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "error: ValueError: shape.side must be > 0, got -1.0"
    assert "Union subtypes" not in err and "Namespace(" not in err


def test_debug_variable_shows_the_original_error(monkeypatch):
    monkeypatch.setenv("S2DM_DEBUG", "1")
    with pytest.raises(ValueError, match="Union subtypes"):
        run_with_clear_errors(lambda: instantiate_square(-1.0))


def test_errors_not_wrapped_by_jsonargparse_are_left_alone():
    def crash() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run_with_clear_errors(crash)
    assert wrapped_cause(RuntimeError("x")) is None


def test_command_line_errors_are_printed_alone(capsys, monkeypatch):
    monkeypatch.delenv("S2DM_DEBUG", raising=False), monkeypatch.delenv("JSONARGPARSE_DEBUG", raising=False)

    def refuse() -> None:
        raise CommandLineError("--flag: not allowed")

    with pytest.raises(SystemExit):
        run_with_clear_errors(refuse)
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: CommandLineError: --flag: not allowed"
