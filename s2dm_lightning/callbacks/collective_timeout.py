"""A bound on how long a DDP rank waits for the others once training runs (:class:`CollectiveTimeout`).

When one rank of a multi-process run dies or hangs, the others wait in their next collective (the
gradient all-reduce, a barrier) for the process group's timeout: 30 minutes with gloo, and with NCCL
10 minutes at best, of a whole cluster allocation. Lightning's own launcher (``strategy: ddp`` started
by the command) watches its child processes, so a dead *child* takes the run down within ~5 s; a dead
rank 0 seen from its children, ranks started by ``torchrun`` / ``srun`` without a supervisor, and a
*hung* rank are bounded by the timeout alone.

From ``on_train_start`` on, this callback sets the default process group's timeout to ``seconds``
(10 minutes by default). Why 10 minutes: during ``fit`` every rank meets the others at every step's
all-reduce; the longest one-sided wait is a checkpoint written by rank 0 while the others stand at
the barrier after it (a 5 GB Stable-Diffusion-sized checkpoint at 20 MB/s on a slow network disk is
~4 minutes) and an evaluation round's gather, whose generation is split evenly over the ranks. Ten
minutes leaves twice that margin and gives back 20 minutes of a 30-minute wait. Before training
(``prepare_data``: rank 0 may compute a whole flow cache while the others wait at the barrier) the
torch default stays, since that wait can legitimately last hours.

After the timeout the waiting rank's collective raises; the run stops with a non-zero exit status and
a line naming the cause and ``--ckpt_path last``.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer

from s2dm_lightning.validation import check_number

DEFAULT_SECONDS = 600.0
_PEER_LOST = ("timed out", "timeout", "connection closed", "connection reset", "broken pipe", "peer")


class CollectiveTimeout(Callback):
    """From ``on_train_start`` on, a DDP collective that waits longer than ``seconds`` fails the run.

    Args:
        seconds: the process group's timeout during training (default 600; see the module's docstring).
    """

    def __init__(self, seconds: float = DEFAULT_SECONDS) -> None:
        check_number("CollectiveTimeout.seconds", seconds, above=0)
        self.seconds = float(seconds)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            dist.distributed_c10d._set_pg_timeout(timedelta(seconds=self.seconds))

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if trainer.world_size > 1 and any(word in str(exception).lower() for word in _PEER_LOST):
            print(f"rank {trainer.global_rank}: another DDP rank stopped answering (dead or hung; collective "
                  f"timeout {self.seconds:g} s, CollectiveTimeout.seconds): this rank stops too; "
                  "resume with the same command plus --ckpt_path last", file=sys.stderr, flush=True)
