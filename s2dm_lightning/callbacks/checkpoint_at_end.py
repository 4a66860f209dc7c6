"""A resumable ``last.ckpt`` at every end of ``fit``: the normal ends, and Ctrl-C / SIGTERM.

Lightning's ``ModelCheckpoint`` writes only on its interval: its ``on_train_end`` writes ``last`` only
when no ``last`` was ever written, so with ``every_n_train_steps: 20`` and ``max_steps: 50`` a run
that ends normally leaves ``last.ckpt`` at step 40, and ``export --ckpt_path last`` ships those
weights. With ``save_on_exception`` off (the configs') a Ctrl-C or SIGTERM writes nothing at all.

:class:`CheckpointAtEnd` writes ``last.ckpt`` through the config's ``ModelCheckpoint`` (its folder,
its name, its logger notification):

- at every normal end (``max_steps``, ``max_epochs``, ``max_time``, an early stop), unless that
  callback has just saved this very step;
- on SIGTERM (what ``kill``, ``timeout``, ``docker stop``, a scheduler or a cloud preemption sends)
  and on the first Ctrl-C: Lightning 2.6 stops at the next step boundary on SIGTERM (its signal
  connector sets ``trainer.received_sigterm``; the loops raise ``SIGTERMException`` after the batch,
  broadcast from rank 0 under DDP so every rank stops at the same step). The first Ctrl-C is turned
  into the same request, so the step in progress finishes and the checkpoint is consistent; a second
  Ctrl-C abandons at once (Lightning's ``KeyboardInterrupt`` path) and writes nothing.

It must run before ``EMAWeightAveraging.on_train_end``, which copies the average into the network:
written after it, the checkpoint's ``current_model_state`` would be the EMA weights and a resumed
run would train on from those. :func:`s2dm_lightning.commands.trainer_cli.TrainerCLI` puts it first.

SLURM (``SLURMEnvironment`` with ``auto_requeue``): Lightning's own ``SIGUSR1`` handler still writes
``hpc_ckpt_N.ckpt`` and requeues, and its SIGTERM bypass stays installed; this callback adds nothing
to the requeue signal and only writes its ``last.ckpt`` beside the hpc checkpoint on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import RunningStage, TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException


@dataclass(frozen=True)
class Interruption:
    """How ``fit`` was stopped and which checkpoint it left (None: none could be written safely)."""

    signal_name: str
    checkpoint: Path | None
    global_step: int
    reason: str = ""


class CheckpointAtEnd(Callback):
    """``last.ckpt`` at the end of training and on Ctrl-C / SIGTERM (see the module's docstring)."""

    def __init__(self) -> None:
        self.interruption: Interruption | None = None
        self._previous_sigint = None
        self._signal_name = "SIGTERM"

    # -- normal ends -------------------------------------------------------------------------------------

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore_sigint()
        save_last(trainer)

    # -- Ctrl-C and SIGTERM ------------------------------------------------------------------------------

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.interruption = None
        self._signal_name = "SIGTERM"
        if threading.current_thread() is threading.main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._first_ctrl_c(trainer))

    def _first_ctrl_c(self, trainer: Trainer):
        def handler(signum: int, frame: FrameType | None) -> None:
            self._signal_name = "SIGINT"
            # The second Ctrl-C gets Python's default: KeyboardInterrupt, Lightning abandons the step.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if trainer.is_global_zero:
                print("\nCtrl-C: stopping after this training step and writing a checkpoint "
                      "(Ctrl-C again to abandon the step and write nothing)", file=sys.stderr, flush=True)
            # Lightning's SIGTERM request: the loops stop at the next step boundary, on every rank.
            trainer._signal_connector.received_sigterm = True
        return handler

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous_sigint)
        self._previous_sigint = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._restore_sigint()
        if trainer.state.fn != TrainerFn.FITTING:
            return
        if isinstance(exception, SIGTERMException):
            if trainer.state.stage != RunningStage.TRAINING:
                # Stopped inside validation: EMA's weights are swapped into the network there, so a
                # checkpoint now would store them crosswise. The last interval checkpoint stands.
                self.interruption = Interruption(self._signal_name, last_written(trainer), trainer.global_step,
                                                 "stopped during validation: no new checkpoint")
            else:
                self.interruption = Interruption(self._signal_name, save_last(trainer), trainer.global_step)
        elif isinstance(exception, KeyboardInterrupt):
            self.interruption = Interruption("SIGINT", last_written(trainer), trainer.global_step,
                                             "abandoned mid-step: no new checkpoint")

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._restore_sigint()


def _model_checkpoint(trainer: Trainer) -> ModelCheckpoint | None:
    return next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)


def save_last(trainer: Trainer) -> Path | None:
    """Write ``last.ckpt`` of the first ``ModelCheckpoint`` at the current step (skipped when it has saved
    this step already); returns the newest checkpoint of this run, or None without a ModelCheckpoint."""
    checkpoint = _model_checkpoint(trainer)
    if checkpoint is None or trainer.fast_dev_run or trainer.sanity_checking:
        return None
    if checkpoint._last_global_step_saved == trainer.global_step and checkpoint._last_checkpoint_saved:
        return last_written(trainer)
    candidates = checkpoint._monitor_candidates(trainer)
    path = checkpoint.format_checkpoint_name(candidates, checkpoint.CHECKPOINT_NAME_LAST)
    if trainer.is_global_zero and os.path.islink(path):
        os.unlink(path)  # save_last: link points at an older step file: this one is a file of its own
    trainer.strategy.barrier("checkpoint_at_end")
    previous, checkpoint.last_model_path = checkpoint.last_model_path, path  # part of the saved state
    checkpoint._save_checkpoint(trainer, path)
    if previous and os.path.abspath(previous) != os.path.abspath(path) and trainer.is_global_zero:
        if Path(previous).name.startswith(checkpoint.CHECKPOINT_NAME_LAST):
            trainer.strategy.remove_checkpoint(previous)  # an old last-vN.ckpt: not two "last"s
    return Path(path)


def last_written(trainer: Trainer) -> Path | None:
    """The checkpoint the run's ModelCheckpoint wrote most recently (None before its first)."""
    checkpoint = _model_checkpoint(trainer)
    latest = checkpoint and (checkpoint.last_model_path or checkpoint._last_checkpoint_saved)
    return Path(latest) if latest else None


def interruption_of(trainer: Trainer) -> Interruption | None:
    """What :class:`CheckpointAtEnd` recorded when ``fit`` was stopped by a signal (None otherwise)."""
    callback = next((c for c in trainer.callbacks if isinstance(c, CheckpointAtEnd)), None)
    return callback.interruption if callback else None


EXIT_STATUS = {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}  # the shell's 130 / 143


def exit_if_interrupted(trainer: Trainer) -> None:
    """After ``fit`` stopped on a signal: one line (rank 0) naming the checkpoint and how to resume, then
    SystemExit with 128 + the signal's number; returns when ``fit`` was not stopped by a signal."""
    stopped = interruption_of(trainer)
    if stopped is None:
        return
    if trainer.is_global_zero:
        how = "resume with the same command plus --ckpt_path last"
        if stopped.checkpoint is None:
            where = "no checkpoint was written yet; the same command starts again from step 0"
        else:
            where = f"checkpoint: {stopped.checkpoint}; {how}"
        detail = f" ({stopped.reason})" if stopped.reason else ""
        print(f"fit stopped by {stopped.signal_name} at global_step {stopped.global_step}{detail}; {where}",
              file=sys.stderr, flush=True)
    raise SystemExit(EXIT_STATUS[stopped.signal_name])
