"""A ``fit`` that will never validate says so at its start (:func:`unreached_validation_notice`).

Validation is where the loss on held-out videos, the sample videos (``SampleVideosCallback``) and the
FVD rounds happen. With ``check_val_every_n_epoch: null`` and ``val_check_interval: N`` (training steps, as
the shipped configs have it) a run whose ``max_steps`` is below N ends without any of them and, left to
Lightning, without a word.
"""

from __future__ import annotations

from lightning.pytorch import Trainer


def unreached_validation_notice(trainer: Trainer) -> str | None:
    """The warning for a step-scheduled validation that ``trainer.max_steps`` never reaches, else None."""
    interval, max_steps = trainer.val_check_interval, trainer.max_steps
    if (trainer.check_val_every_n_epoch is not None or not isinstance(interval, int) or max_steps is None
            or max_steps < 0 or max_steps >= interval or trainer.limit_val_batches == 0):
        return None
    return (f"warning: trainer.max_steps={max_steps} is below trainer.val_check_interval={interval}: this run will "
            f"not validate, so it writes no validation loss and no sample videos. To validate at its end, give "
            f"--trainer.val_check_interval={max_steps} (or a divisor of it), or train for at least {interval} steps.")
