"""The thread count a command runs with: the environment when set, else half the usable cores."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from s2dm_lightning.commands.threads import MAX_DEFAULT_THREADS, default_thread_count, usable_cores
from tests.bad_input.cli import REPO

PROBE = ("import torch; from s2dm_lightning.commands.threads import apply_thread_default; "
         "apply_thread_default(); print(torch.get_num_threads())")


def _threads_in_a_fresh_process(**variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "S2DM_THREADS", "MKL_NUM_THREADS")}
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO,
                          env={**env, **variables}, timeout=120)


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 1), (3, 1), (8, 4), (64, MAX_DEFAULT_THREADS)])
def test_default_is_half_the_cores_between_1_and_the_cap(cores, expected):
    assert default_thread_count(cores) == expected


def test_unset_environment_gets_the_default_and_a_set_one_is_respected():
    unset = _threads_in_a_fresh_process()
    assert unset.returncode == 0, unset.stderr
    default = default_thread_count(usable_cores())
    assert int(unset.stdout) == default
    other = 2 if default == 1 else 1  # a count the default is not, so the environment is seen to win
    assert int(_threads_in_a_fresh_process(OMP_NUM_THREADS=str(other)).stdout) == other
    assert int(_threads_in_a_fresh_process(S2DM_THREADS=str(other), OMP_NUM_THREADS=str(default)).stdout) == other


def test_bad_s2dm_threads_is_named():
    result = _threads_in_a_fresh_process(S2DM_THREADS="many")
    assert result.returncode != 0 and "S2DM_THREADS" in result.stderr and "'many'" in result.stderr
