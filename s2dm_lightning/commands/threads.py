"""The torch thread count of a command (:func:`apply_thread_default`), stated rather than left to torch.

Left alone, torch runs as many intra-op threads as the machine has cores. On a CPU that other work shares
(or with DataLoader workers and flow preprocessing running beside training) those threads wait on each
other: issue #29 measured the commands 3-7x slower on a shared 2-core machine than with
``OMP_NUM_THREADS=1``. So: ``OMP_NUM_THREADS`` (or ``S2DM_THREADS``), when set, is respected; otherwise the
commands use half the cores this process may run on, at least 1 and at most :data:`MAX_DEFAULT_THREADS`
(``benchmarks/bench_training.py --threads`` measures the effect; docs/command_line.md states the rule).
"""

from __future__ import annotations

import os

import torch

MAX_DEFAULT_THREADS = 8  # beyond this a CPU step of the shipped models gains little (and GPU runs need none)
THREAD_VARIABLES = ("S2DM_THREADS", "OMP_NUM_THREADS")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def default_thread_count(cores: int) -> int:
    """Half of ``cores``, between 1 and :data:`MAX_DEFAULT_THREADS`."""
    return max(1, min(cores // 2, MAX_DEFAULT_THREADS))


def apply_thread_default(environ: dict[str, str] | None = None) -> int:
    """Set torch's intra-op threads: ``S2DM_THREADS`` > ``OMP_NUM_THREADS`` (torch reads that itself) > the
    default of :func:`default_thread_count`; returns the count in use."""
    environ = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            if name == "S2DM_THREADS":
                if not value.isdigit() or int(value) < 1:
                    raise ValueError(f"S2DM_THREADS must be a whole number >= 1, got {value!r}")
                torch.set_num_threads(int(value))
            return torch.get_num_threads()
    torch.set_num_threads(default_thread_count(usable_cores()))
    return torch.get_num_threads()
