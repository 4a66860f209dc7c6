"""The callbacks every ``fit`` gets against the faults of a long run (docs/reliability.md), unless the config
brings its own instance: ``last.ckpt`` at every end, a finite-loss guard, a bounded DDP collective wait, a notice
when a resume cannot restore the data order."""

from __future__ import annotations

from lightning.pytorch import Callback

from s2dm_lightning.callbacks.checkpoint_at_end import CheckpointAtEnd
from s2dm_lightning.callbacks.collective_timeout import CollectiveTimeout
from s2dm_lightning.callbacks.data_order import DataOrderNotice
from s2dm_lightning.callbacks.finite_loss import FiniteLossGuard


def with_fault_callbacks(configured: list[Callback]) -> list[Callback]:
    """``configured`` with :class:`CheckpointAtEnd` first (it must run before the EMA's ``on_train_end``) and
    default :class:`FiniteLossGuard` / :class:`CollectiveTimeout` / :class:`DataOrderNotice` where the config has
    none."""
    defaults = [kind() for kind in (FiniteLossGuard, CollectiveTimeout, DataOrderNotice)
                if not any(isinstance(c, kind) for c in configured)]
    first = [c for c in configured if isinstance(c, CheckpointAtEnd)] or [CheckpointAtEnd()]
    return [*first, *defaults, *(c for c in configured if not isinstance(c, CheckpointAtEnd))]
