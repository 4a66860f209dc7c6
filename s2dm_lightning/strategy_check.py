"""Stop before training when the strategy would have to pickle a callback that cannot be pickled.

``ddp_spawn`` (and ``ddp_forkserver``) start their processes by pickling the trainer; Lightning's
``EMAWeightAveraging`` holds a local function (``get_ema_avg_fn``) and fails there with a bare
``Can't pickle local object`` traceback. ``ddp`` starts each process by re-running the command,
so nothing is pickled: that is the strategy to use.
"""

from __future__ import annotations

import pickle

from lightning.pytorch import Trainer
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher


def reject_unpicklable_spawn(trainer: Trainer) -> None:
    """SystemExit naming the strategy and the callback when a spawned launch would fail to pickle it."""
    launcher = trainer.strategy.launcher
    if not isinstance(launcher, _MultiProcessingLauncher) or launcher.is_interactive_compatible:
        return  # no launcher, the command re-run by `ddp`, or fork: nothing is pickled
    start_method = getattr(launcher, "_start_method", "spawn")
    for callback in trainer.callbacks:
        try:
            pickle.dumps(callback)
        except Exception as error:  # noqa: BLE001 - pickling fails with several exception types
            raise SystemExit(
                f"--trainer.strategy=ddp_{start_method} cannot start: it pickles every callback and "
                f"trainer.callbacks {type(callback).__name__} cannot be pickled ({error}). "
                "Use --trainer.strategy=ddp (one process per device, started by re-running the command)."
            ) from None
