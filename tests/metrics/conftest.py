"""Shared fixtures of the metric tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run each metric test on one torch (and, if threadpoolctl is present, BLAS) thread.

    On a shared 2-core machine multithreaded LAPACK (the 400 x 400 eigendecompositions of FVD,
    scipy's sqrtm in the reference) can slow down 100x from oversubscription; one thread keeps the
    tests fast and steady. The previous settings are restored afterwards.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=1))
        except ImportError:
            pass
        try:
            yield
        finally:
            torch.set_num_threads(before)
