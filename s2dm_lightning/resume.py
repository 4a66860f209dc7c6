"""``fit --ckpt_path last``: find the newest *complete* checkpoint of the experiment, in any version folder.

Lightning alone looks for ``last.ckpt`` only in the folder of the logger's *next* version (a fresh
``version_N+1`` after a kill), so a re-run started from step 0. Here ``last`` means: of every
``*.ckpt`` of the experiment (``<save_dir>/<name>/*/checkpoints``, or a ModelCheckpoint's own
``dirpath``), the most recently written one that loads as data and has a ``global_step``; a file cut
short by a kill mid-write (Lightning does not write by rename) is skipped with a warning. The logger
then continues that checkpoint's version folder, and TensorBoard hides the killed run's events past
the checkpoint's step (``purge_step``); with no checkpoint at all, training starts from step 0 in the
newest version folder (a run killed before its first checkpoint).

SLURM requeue: on the requeue signal Lightning writes ``hpc_ckpt_N.ckpt`` into ``default_root_dir``, outside
the experiment's folders, and picks it up by itself only when ``ckpt_path`` is None (then logging to a new
version folder). So ``last`` also counts the ``hpc_ckpt_*.ckpt`` of ``default_root_dir`` whose
ModelCheckpoint state names one of this experiment's checkpoint folders (several experiments may share a
``default_root_dir``): a requeued job re-running the same ``--ckpt_path last`` command resumes from the
hpc checkpoint when it is the newest, in the version folder it was written from. See docs/resuming.md.
"""

from __future__ import annotations

import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

VERSION_FOLDER = re.compile(r"version_(\d+)")
HPC_PREFIX = "hpc_ckpt_"  # Lightning's name for the checkpoint of the SLURM requeue signal


class IncompleteCheckpoint(ValueError):
    """The file does not load: cut short by a kill while Lightning wrote it (or otherwise damaged)."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file that loads: its path, ``global_step`` and modification time."""

    path: Path
    global_step: int
    mtime: float
    dirpath: Path | None = None  # the folder its run's ModelCheckpoint wrote to (None without one)


def _say(message: str) -> None:
    """One line on stderr, from rank 0 only (every DDP process resolves the same files)."""
    if rank_zero_only.rank == 0:
        print(f"resume: {message}", file=sys.stderr, flush=True)


def read_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint's step; IncompleteCheckpoint for a file cut short, ValueError for other unusable files.

    A zip file's directory is its last part, so a file cut short has none. ``torch.load`` with ``mmap``
    reads only the pickled structure, not the tensors: cheap even for multi-GB checkpoints.
    """
    try:
        with zipfile.ZipFile(path):
            pass
    except (zipfile.BadZipFile, OSError) as error:
        raise IncompleteCheckpoint(f"is not a complete zip file ({error})") from error
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - any failure means "cannot resume from this file"
        first_line = (str(error).strip() or type(error).__name__).splitlines()[0]
        raise ValueError(f"does not load with torch.load(weights_only=True) ({first_line}); "
                         "if you trust it, pass it as --ckpt_path PATH") from error
    step = data.get("global_step") if isinstance(data, dict) else None
    if not isinstance(step, int):
        raise ValueError("has no global_step (not a Lightning training checkpoint)")
    return Checkpoint(path, step, os.path.getmtime(path), _model_checkpoint_dirpath(data))


def _model_checkpoint_dirpath(data: dict) -> Path | None:
    """The ``dirpath`` in the checkpoint's ModelCheckpoint state (its key is ``ModelCheckpoint{...}``)."""
    callbacks = data.get("callbacks")
    for key, state in (callbacks.items() if isinstance(callbacks, dict) else ()):
        if str(key).startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("dirpath"):
            return Path(state["dirpath"])
    return None


def checkpoint_folders(trainer: Trainer) -> list[Path]:
    """Every folder where this experiment's ModelCheckpoints write, over all logger versions."""
    folders: list[Path] = []
    for callback in trainer.checkpoint_callbacks:
        dirpath = getattr(callback, "dirpath", None)
        if dirpath:
            folders.append(Path(dirpath))
        elif trainer.loggers:  # Lightning's own rule: <save_dir>/<name>/<version>/checkpoints
            experiment = experiment_folder(trainer)
            folders.extend(sorted(experiment.glob("*/checkpoints")) if experiment.is_dir() else [])
        else:
            folders.append(Path(trainer.default_root_dir) / "checkpoints")
    return list(dict.fromkeys(folders))


def experiment_folder(trainer: Trainer) -> Path:
    """``<save_dir>/<name>`` of the first logger (where its version folders live)."""
    logger = trainer.loggers[0]
    return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name or "")


def newest_complete(folders: list[Path], hpc: list[Checkpoint] | None = None,
                    ) -> tuple[Checkpoint | None, list[tuple[Path, Exception]]]:
    """The most recently written complete checkpoint of ``folders`` and ``hpc`` (complete hpc checkpoints of
    this experiment, :func:`hpc_checkpoints`; ties: the higher step, then the folders' file), and the files skipped."""
    complete: list[Checkpoint] = list(hpc or [])
    skipped: list[tuple[Path, Exception]] = []
    seen: set[Path] = set()
    for folder in folders:
        # last*.ckpt first: with save_last: link it is a symlink to a step checkpoint, and resuming from
        # its name keeps ModelCheckpoint writing last.ckpt (not last-v1.ckpt) afterwards.
        for path in sorted(folder.glob("*.ckpt"), key=lambda p: (not p.name.startswith("last"), p.name)):
            target = path.resolve()
            if target in seen:
                continue
            seen.add(target)
            try:
                complete.append(read_checkpoint(path))
            except (ValueError, OSError) as error:
                skipped.append((path, error))
    newest = max(complete, key=lambda c: (c.mtime, c.global_step, not c.path.name.startswith(HPC_PREFIX)),
                 default=None)
    # An older broken file is not what `last` would have meant: report only those newer than the choice.
    skipped = [(p, why) for p, why in skipped if newest is None or _mtime(p) >= newest.mtime]
    return newest, skipped


def _mtime(path: Path) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return float("inf")


def hpc_checkpoints(trainer: Trainer) -> list[Checkpoint]:
    """The complete ``hpc_ckpt_*.ckpt`` of ``default_root_dir`` written by this experiment: their
    ModelCheckpoint wrote to one of its folders. Broken or foreign ones are left alone (and unreported:
    Lightning's own hpc resume ignores them too when ``--ckpt_path last`` is given)."""
    found = []
    for path in sorted(Path(trainer.default_root_dir).glob(f"{HPC_PREFIX}*.ckpt")):
        try:
            checkpoint = read_checkpoint(path)
        except (ValueError, OSError):
            continue
        if checkpoint.dirpath is not None and _written_by_this_experiment(trainer, checkpoint.dirpath):
            found.append(checkpoint)
    return found


def _written_by_this_experiment(trainer: Trainer, dirpath: Path) -> bool:
    """Whether ``dirpath`` (a checkpoint's ModelCheckpoint folder) is where this config's ModelCheckpoints
    write: their own ``dirpath``, or a version folder's ``checkpoints/`` of the experiment (it may not
    exist yet when the signal came before the first interval checkpoint)."""
    written = dirpath.resolve()
    for callback in trainer.checkpoint_callbacks:
        configured = getattr(callback, "dirpath", None)
        if configured and Path(configured).resolve() == written:
            return True
        if not configured and trainer.loggers:
            if written.name == "checkpoints" and written.parent.parent == experiment_folder(trainer).resolve():
                return True
    return False


def other_places(trainer: Trainer, searched: list[Path]) -> list[Path]:
    """Checkpoints of this run's Lightning defaults that ``last`` does not search (e.g. a run without logger)."""
    root = Path(trainer.default_root_dir)
    places = [root / "checkpoints", *sorted((root / "lightning_logs").glob("*/checkpoints"))]
    if trainer.loggers:
        places += sorted(experiment_folder(trainer).glob("*/checkpoints"))
    found = [p for place in places if place not in searched for p in sorted(place.glob("*.ckpt"))]
    return list(dict.fromkeys(found))


def continue_logging_in(trainer: Trainer, version_folder: Path, step: int) -> None:
    """Point the logger at ``version_folder`` from ``step`` on (unless the user fixed a version)."""
    if not trainer.loggers or version_folder.parent.resolve() != experiment_folder(trainer).resolve():
        return  # a ModelCheckpoint dirpath outside the logger's tree: nothing says which version it was
    logger = trainer.loggers[0]
    # The logger's version is still unresolved here (it is read when fit starts); _version is where
    # Lightning's loggers keep the constructor's ``version`` argument.
    if getattr(logger, "_version", "unset") is not None:
        return
    match = VERSION_FOLDER.fullmatch(version_folder.name)
    logger._version = int(match.group(1)) if match else version_folder.name
    if isinstance(logger, TensorBoardLogger):
        # SummaryWriter(purge_step=N): TensorBoard hides the killed run's events at steps >= N, which
        # this run logs again, so the curves continue without a doubled stretch.
        # (LightningCLI passes SummaryWriter's own purge_step=None, so test for None, not for the key.)
        if logger._kwargs.get("purge_step") is None:
            logger._kwargs["purge_step"] = step


def newest_version_folder(trainer: Trainer) -> Path | None:
    """The experiment's highest ``version_N`` folder (the run a kill before its first checkpoint left)."""
    if not trainer.loggers or not experiment_folder(trainer).is_dir():
        return None
    numbered = [(int(m.group(1)), p) for p in experiment_folder(trainer).iterdir()
                if p.is_dir() and (m := VERSION_FOLDER.fullmatch(p.name))]
    return max(numbered, key=lambda n: n[0])[1] if numbered else None


def resolve_last(trainer: Trainer, ckpt_path: str | None) -> str | None:
    """The path ``fit`` should resume from for ``ckpt_path``; only ``"last"`` is resolved here.

    Returns None (train from step 0) when the experiment has no checkpoint yet; stops with SystemExit
    when it has none but checkpoints exist where this config does not look (they may be this run's).
    """
    if ckpt_path != "last":
        return ckpt_path
    folders = checkpoint_folders(trainer)
    newest, skipped = newest_complete(folders, hpc_checkpoints(trainer))
    for path, why in skipped:
        if isinstance(why, IncompleteCheckpoint) and rank_zero_only.rank == 0:
            # Moved aside, so this run writes a fresh last.ckpt (ModelCheckpoint would pick last-v1.ckpt
            # beside a broken one) and `last.ckpt` stays the path to the newest weights.
            aside = path.with_name(path.name + ".incomplete")
            os.replace(path, aside)
            _say(f"WARNING: skipping {path}: {why}; cut short by a kill while it was written? moved to {aside.name}")
        else:
            _say(f"WARNING: skipping {path}: {why}")
    where = ", ".join(str(f) for f in folders) or (
        f"{experiment_folder(trainer)}/*/checkpoints" if trainer.loggers else "(no ModelCheckpoint callback)")
    if newest is not None:
        _say(f"--ckpt_path last: resuming from {newest.path} (global_step {newest.global_step})")
        # an hpc checkpoint lies in default_root_dir: its run is the one its ModelCheckpoint wrote into
        hpc = newest.path.name.startswith(HPC_PREFIX) and newest.dirpath is not None
        checkpoints = newest.dirpath if hpc else newest.path.parent
        continue_logging_in(trainer, checkpoints.parent, newest.global_step)
        return str(newest.path)
    elsewhere = other_places(trainer, folders)
    if elsewhere:
        listing = "\n  ".join(str(p) for p in elsewhere[:10])
        raise SystemExit(
            f"--ckpt_path last: no complete checkpoint in {where}, but checkpoints exist elsewhere:\n  {listing}\n"
            "pass one with --ckpt_path PATH, or leave out --ckpt_path to train from step 0"
        )
    killed_run = newest_version_folder(trainer)
    if killed_run is not None:  # no checkpoint anywhere: its events are replaced from step 0
        continue_logging_in(trainer, killed_run, 0)
    if skipped:
        _say(f"WARNING: --ckpt_path last: no complete checkpoint in {where}: training starts from step 0")
    else:
        _say(f"--ckpt_path last: no checkpoint yet in {where}: training starts from step 0")
    return None
