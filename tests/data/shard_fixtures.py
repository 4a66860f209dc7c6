"""A small shard set packed from the session's synthetic dataset (tests/latent_fixtures.py), for the streaming tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2dm_lightning.synthetic import SyntheticDataModule
from tests.latent_fixtures import DATA_ARGS

CLIPS_PER_VIDEO = 2
CHUNK_BYTES = 4000  # a few clips a chunk: several chunks, so that shuffling across chunks is exercised


def packed_datamodule(root: Path) -> SyntheticDataModule:
    datamodule = SyntheticDataModule(root=str(root), **DATA_ARGS)
    datamodule.setup("fit")
    return datamodule


def pack(root: Path, output_dir: Path) -> Path:
    from s2dm_lightning.data.shards import pack_split

    datamodule = packed_datamodule(root)
    for split in ("train", "val"):
        pack_split(datamodule, split, output_dir, clips_per_video=CLIPS_PER_VIDEO, chunk_bytes=CHUNK_BYTES)
    return output_dir


@pytest.fixture(scope="session")
def shard_set(synthetic_root, tmp_path_factory) -> Path:
    pytest.importorskip("litdata", reason="the stream extra (litdata) is not installed")
    return pack(synthetic_root, tmp_path_factory.mktemp("shards") / "set")
