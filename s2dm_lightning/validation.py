"""Checks of user-given numbers and choices, with the config key in the message.

Every module checks its arguments when it is built (or, for what depends on the data, in
``setup``) with these helpers, so a bad value stops the run at once with
"model.init_args.guidance_scale must be >= 0, got -1" rather than training on it.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any


def check_number(
    key: str,
    value: float | int | None,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    optional: bool = False,
    note: str = "",
) -> None:
    """Raise ``ValueError`` naming ``key`` unless ``value`` lies in the given bounds.

    Args:
        key: the config key the user sets, e.g. ``model.init_args.eta``.
        value: the value given.
        at_least: smallest allowed value (inclusive).
        above: the value must be greater than this (exclusive).
        at_most: largest allowed value (inclusive).
        optional: None is allowed (it means "default"/"off" for this key).
        note: appended to the message (what the bound means, what to use instead).
    """
    if value is None and optional:
        return
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number{' or null' if optional else ''}, got {value!r}")
    bounds = [(at_least, ">=", operator.ge), (above, ">", operator.gt), (at_most, "<=", operator.le)]
    bounds = [(bound, sign, holds) for bound, sign, holds in bounds if bound is not None]
    if not all(holds(value, bound) for bound, _, holds in bounds):  # NaN fails every comparison
        wanted = " and ".join(f"{sign} {bound}" for bound, sign, _ in bounds)
        raise ValueError(f"{key} must be {wanted}, got {value!r}" + (f" ({note})" if note else ""))


def check_probability(key: str, value: float) -> None:
    """``value`` must be a probability in [0, 1] (dropout rates)."""
    check_number(key, value, at_least=0.0, at_most=1.0)


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    """``value`` must be one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{key} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")


def check_multiple(key: str, value: int, factor: int, reason: str) -> None:
    """``value`` must be a multiple of ``factor``; ``reason`` says why (which network needs it)."""
    if factor > 1 and value % factor != 0:
        lower = max(factor, value - value % factor)
        raise ValueError(
            f"{key}={value} must be a multiple of {factor} ({reason}); e.g. {lower} or {lower + factor}"
        )
