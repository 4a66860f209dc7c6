"""One clear error, last on screen, when building the config's classes fails.

jsonargparse instantiates every ``class_path`` of the config; when one of our classes raises
(``model.text_dropout must be in [0, 1]``, a Stable Diffusion folder without ``vae/``), it
wraps that error in its own ("Does not validate against any of the Union subtypes", followed by
a dump of the whole Namespace), so the message that names the key ends up in the middle of the
screen. :func:`run_with_clear_errors` prints the error jsonargparse wrapped, alone, as the last
line and exits with status 2 (that of a command-line error); ``S2DM_DEBUG=1`` or
``JSONARGPARSE_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import jsonargparse


class CommandLineError(ValueError):
    """An error in what the command line or config asked for, found by the command itself: printed alone."""


DEBUG_VARIABLES = ("S2DM_DEBUG", "JSONARGPARSE_DEBUG")
_WRAPPER_DIRS = (Path(jsonargparse.__file__).resolve().parent,)


def debug_requested() -> bool:
    """True when one of ``DEBUG_VARIABLES`` is set to a non-empty value other than 0."""
    return any(os.environ.get(name, "") not in ("", "0") for name in DEBUG_VARIABLES)


def _raised_in(traceback: TracebackType | None) -> Path | None:
    """The file of the innermost frame of ``traceback`` (where the exception was raised)."""
    last = None
    while traceback is not None:
        last, traceback = traceback, traceback.tb_next
    return None if last is None else Path(last.tb_frame.f_code.co_filename).resolve()


def _raised_by_wrapper(error: BaseException) -> bool:
    where = _raised_in(error.__traceback__)
    return where is not None and any(folder in where.parents for folder in _WRAPPER_DIRS)


def wrapped_cause(error: BaseException) -> BaseException | None:
    """The error jsonargparse wrapped in ``error`` (following ``raise ... from``), or None when ``error``
    is not jsonargparse's or wraps nothing of another origin."""
    if not _raised_by_wrapper(error):
        return None
    current = error
    while current.__cause__ is not None and _raised_by_wrapper(current):
        current = current.__cause__
    return None if current is error or _raised_by_wrapper(current) else current


def run_with_clear_errors(command: Callable[[], object]) -> None:
    """Run ``command``; a :class:`CommandLineError`, or an error of ours wrapped by jsonargparse, is printed
    alone, last, then exit 2."""
    try:
        command()
    except Exception as error:
        # printed_alone: a fault found while running (a NaN loss), with its own exit status
        alone = isinstance(error, CommandLineError) or getattr(type(error), "printed_alone", False)
        cause = error if alone else wrapped_cause(error)
        cause = None if debug_requested() else cause
        if cause is None:
            raise
        print(f"(full traceback: set {DEBUG_VARIABLES[0]}=1)", file=sys.stderr)
        print(f"error: {type(cause).__name__}: {cause}", file=sys.stderr)
        raise SystemExit(getattr(type(cause), "exit_status", 2)) from None
