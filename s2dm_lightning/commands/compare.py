"""``python -m s2dm_lightning compare A/evaluation_report.json B/evaluation_report.json``: is A's FVD really not B's?

Prints the bootstrap interval of FVD(A) - FVD(B) and KVD(A) - KVD(B) from the features that ``test`` wrote
beside each report (:func:`s2dm_lightning.evaluation.intervals.compare_reports`), and writes it as JSON with
``--output``. Two reports made on different real sides (feature network, real features, preset) are refused,
naming each difference, as one clear error line.
"""

from __future__ import annotations

import argparse
import json
import sys

from s2dm_lightning.commands.errors import CommandLineError
from s2dm_lightning.io import atomic_write_text
from s2dm_lightning.metrics.bootstrap import DEFAULT_RESAMPLES


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m s2dm_lightning compare",
                                    description=__doc__.split("\n\n")[1].replace("\n", " "))
    parse.add_argument("report_a", help="A's evaluation_report.json (its .features.safetensors beside it)")
    parse.add_argument("report_b", help="B's evaluation_report.json")
    parse.add_argument("--run_a", type=int, default=None, help="run of A (default: its last)")
    parse.add_argument("--run_b", type=int, default=None, help="run of B (default: its last)")
    parse.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples (>= 2)")
    parse.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws")
    parse.add_argument("--confidence", type=float, default=0.95, help="of the interval, in (0, 1)")
    parse.add_argument("--paired", action="store_true",
                       help="resample A and B with the same indices (B generated for the same conditions, in order)")
    parse.add_argument("--output", default=None, help="write the result as JSON to this file")
    return parse


def main(argv: list[str] | None = None) -> dict:
    """Parse ``compare``'s arguments, print the intervals and return the result."""
    from s2dm_lightning.evaluation.intervals import compare_reports

    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        result = compare_reports(args.report_a, args.report_b, args.run_a, args.run_b, args.resamples, args.seed,
                                 args.confidence, args.paired)
    except ValueError as error:  # RealSideMismatchError, ReceivedFileError, bad options
        raise CommandLineError(str(error)) from error
    level = f"{100 * result['confidence']:g} %"
    for name in ("fvd_difference", "kvd_difference"):
        item = result[name]
        verdict = "covers 0" if item["low"] <= 0 <= item["high"] else "excludes 0"
        print(f"{name.replace('_difference', '').upper()}(A) - {name.split('_')[0].upper()}(B) = {item['estimate']:.6g}, "
              f"{level} interval [{item['low']:.6g}, {item['high']:.6g}] ({verdict}; {result['num_resamples']} "
              f"resamples, seed {result['seed']})")
    if args.output:
        atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    return result
