"""Where ``validate``/``test``/``predict --ckpt_path`` log: into the run they evaluate, not a new ``version_N``.

A checkpoint written by ``fit`` lies in ``<save_dir>/<name>/<version>/checkpoints/``. Left alone, the
TensorBoard logger of the config would open a fresh ``version_N+1`` for every evaluation (a stray folder with
a config and an empty event file), and Lightning's ModelCheckpoint would then warn "The dirpath has changed"
when it restores its state from the checkpoint. Here the logger of an evaluation writes to
``<run>/<subcommand>/`` (its TensorBoard events, the test report, the config it ran with) and the run's own
files stay as ``fit`` left them. A logger whose ``version`` the user named, a logger other than TensorBoard's,
or a checkpoint outside a ``checkpoints/`` folder is left as configured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

TENSORBOARD = "lightning.pytorch.loggers.TensorBoardLogger"
EVALUATIONS = ("validate", "test", "predict")


def run_folder_of(ckpt_path: str | Path) -> Path | None:
    """The run folder of a checkpoint written by ``fit`` (the folder above ``checkpoints/``), else None."""
    path = Path(ckpt_path)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def log_into_evaluated_run(subcommand: str | None, config: Namespace) -> Path | None:
    """Point the trainer's TensorBoard logger of ``config`` (one subcommand's section) at ``<run>/<subcommand>``
    of its ``ckpt_path``; returns that folder, or None when the config is left as it was."""
    ckpt_path = config.get("ckpt_path")
    run = run_folder_of(ckpt_path) if subcommand in EVALUATIONS and ckpt_path else None
    trainer = config.get("trainer")
    if run is None or trainer is None:
        return None
    logger = trainer.get("logger")
    if logger is True:  # Lightning's default logger is TensorBoard's under default_root_dir
        logger = Namespace(class_path=TENSORBOARD, init_args=Namespace(save_dir=trainer.get("default_root_dir") or "."))
    if not isinstance(logger, Namespace) or logger.get("class_path") != TENSORBOARD:
        return None
    init_args = logger.get("init_args") or Namespace()
    if init_args.get("version") is not None:  # the user named the folder
        return None
    save_dir, name = _same_spelling(run, init_args)
    for key, value in {"save_dir": save_dir, "name": name, "version": run.name, "sub_dir": subcommand}.items():
        init_args[key] = value
    logger.init_args = init_args
    trainer.logger = logger
    return run / subcommand


def _same_spelling(run: Path, init_args: Any) -> tuple[str, str]:
    """``save_dir`` and ``name`` for ``run``: the config's own strings when they lead there (the checkpoint's
    ModelCheckpoint state holds the folder as ``fit`` spelt it, and Lightning compares the strings), else the
    run's parents."""
    save_dir, name = init_args.get("save_dir"), init_args.get("name")
    if save_dir is not None and name is not None:
        configured = os.path.join(str(save_dir), str(name), run.name)
        if os.path.realpath(configured) == os.path.realpath(run):
            return str(save_dir), str(name)
    return str(run.parent.parent), run.parent.name
