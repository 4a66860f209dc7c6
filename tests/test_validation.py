"""s2dm_lightning/validation.py: the shared checks name the key, the value and the rule."""

from __future__ import annotations

import math

import pytest

from s2dm_lightning.validation import check_choice, check_multiple, check_number, check_probability


def test_check_number_bounds_and_message():
    check_number("k", 0, at_least=0)
    check_number("k", 0.5, above=0, at_most=1)
    with pytest.raises(ValueError, match=r"^model.init_args.eta must be >= 0, got -1 \(DDIM eta\)$"):
        check_number("model.init_args.eta", -1, at_least=0, note="DDIM eta")
    with pytest.raises(ValueError, match=r"k must be > 0 and <= 1, got 0$"):
        check_number("k", 0, above=0, at_most=1)
    with pytest.raises(ValueError, match="got nan"):
        check_number("k", math.nan, at_least=0)  # NaN fails every comparison


def test_check_number_none_and_non_numbers():
    check_number("k", None, at_least=1, optional=True)
    with pytest.raises(ValueError, match="k must be a number, got None"):
        check_number("k", None, at_least=1)
    with pytest.raises(ValueError, match="k must be a number or null, got True"):
        check_number("k", True, at_least=0, optional=True)  # a bool is not a count
    with pytest.raises(ValueError, match="got '3'"):
        check_number("k", "3", at_least=0)


def test_check_probability():
    check_probability("p", 0.0)
    check_probability("p", 1)
    with pytest.raises(ValueError, match=r"p must be >= 0.0 and <= 1.0, got 1.5"):
        check_probability("p", 1.5)


def test_check_choice():
    check_choice("mode", "joint", ("joint", "separate"))
    with pytest.raises(ValueError, match=r"mode must be one of 'joint', 'separate'; got 'both'"):
        check_choice("mode", "both", ("joint", "separate"))


def test_check_multiple_suggests_neighbours():
    check_multiple("size", 32, 4, "why")
    check_multiple("size", 7, 1, "anything divides by 1")
    with pytest.raises(ValueError, match=r"size=30 must be a multiple of 4 \(three halvings\); e.g. 28 or 32"):
        check_multiple("size", 30, 4, "three halvings")
    with pytest.raises(ValueError, match="e.g. 8 or 16"):
        check_multiple("size", 3, 8, "why")
