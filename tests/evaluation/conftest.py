"""A tiny synthetic dataset (12 videos of 24 frames, flows computed) shared by the protocol tests."""

from __future__ import annotations

import pytest

from tests.evaluation.helpers import tiny_synthetic_datamodule


@pytest.fixture(scope="session")
def tiny_synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocol") / "synthetic"
    tiny_synthetic_datamodule(root).prepare_data()
    return root
