"""The command line: ``python -m s2dm_lightning SUBCOMMAND ...`` (``--help`` lists every subcommand).

:data:`SUBCOMMANDS` is the one table of them: the module of this package that runs each one (its
``main(argv)``) and its line of ``--help``. A module is imported only when its subcommand runs, so
``--help`` and each command load only what they use. Errors of our classes reach the screen
through :mod:`s2dm_lightning.commands.errors` (alone, as the last line).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import import_module

from s2dm_lightning.commands.errors import run_with_clear_errors
from s2dm_lightning.commands.quiet import silence_library_chatter
from s2dm_lightning.commands.threads import apply_thread_default


@dataclass(frozen=True)
class Subcommand:
    """One subcommand of the table.

    Attributes:
        module: the module of :mod:`s2dm_lightning.commands` whose ``main(argv: list[str])`` runs it.
        help: its line of the top-level ``--help``.
        gets_name: ``main`` gets the subcommand's name before its arguments (LightningCLI parses the
            name itself); otherwise it gets only the arguments after the name.
    """

    module: str
    help: str
    gets_name: bool = False


SUBCOMMANDS: dict[str, Subcommand] = {
    # LightningCLI's (commands/lightning.py); their lines are those of LightningCLI's own help.
    "fit": Subcommand("lightning", "Runs the full optimization routine.", gets_name=True),
    "validate": Subcommand("lightning", "Perform one evaluation epoch over the validation set.", gets_name=True),
    "test": Subcommand("lightning", "Perform one evaluation epoch over the test set.", gets_name=True),
    "predict": Subcommand("lightning", "Run inference on your data.", gets_name=True),
    # Ours, one module each; a new subcommand is one line here.
    "preprocess": Subcommand("preprocess",
                             "Compute and cache the flow/occlusion conditions of a dataset (no training)."),
    "pack": Subcommand("pack", "Write a dataset's clips as streaming shards (litdata) for StreamingVideoDataModule "
                               "(--config ... --output_dir DIR)."),
    "cut": Subcommand("cut", "Cut long footage into clips and list them in metadata.csv "
                             "(--video FILE --output_dir DIR --caption TEXT)."),
    "sample": Subcommand("sample",
                         "Two-stage text-to-video from --prompt (see `sample --help`; s2dm_lightning.pipelines)."),
    "evaluate": Subcommand("evaluate", "FVD/KVD of a folder of any method's videos under the test protocol "
                                       "(--config ... --videos DIR [--mapping CSV | --pattern REGEX])."),
    "export": Subcommand("export", "Write a trained model as a self-contained folder: "
                                   "--config ... --ckpt_path CKPT|last --output_dir DIR."),
    "compare": Subcommand("compare", "The bootstrap interval of FVD(A) - FVD(B) of two test reports on one real side "
                                     "(A/evaluation_report.json B/evaluation_report.json)."),
    "demo": Subcommand("demo", "A web page (Gradio, the demo extra) to generate videos: --config ... --ckpt_path CKPT."),
}


def usage() -> str:
    """The top-level ``--help``: every subcommand of :data:`SUBCOMMANDS`, one line each."""
    width = max(map(len, SUBCOMMANDS))
    lines = [f"usage: python -m s2dm_lightning {{{','.join(SUBCOMMANDS)}}} --config CONFIG.yaml [--key value ...]", "",
             "subcommands (SUBCOMMAND --help lists its options):"]
    lines += [f"  {name:<{width}}  {entry.help}" for name, entry in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run one subcommand; an error of our classes is printed alone, as the last line (exit status 2)."""
    silence_library_chatter()

    def command() -> None:
        apply_thread_default()  # inside: a bad S2DM_THREADS is a clear error too
        _run(list(sys.argv[1:] if argv is None else argv))

    run_with_clear_errors(command)


def _run(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        if not argv:
            raise SystemExit(2)
        return
    # Anything else goes to LightningCLI too, whose parser names what is wrong (and lists the choices).
    entry = SUBCOMMANDS.get(argv[0], SUBCOMMANDS["fit"])
    import_module(f"{__name__}.{entry.module}").main(argv if entry.gets_name else argv[1:])
