"""s2dm_lightning/config.py: a section of an experiment YAML built without the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2dm_lightning.config import load_datamodule
from s2dm_lightning.synthetic import SyntheticDataModule


def test_load_datamodule_builds_the_data_section_with_overrides(tmp_path):
    config = Path(__file__).resolve().parents[1] / "configs" / "synthetic.yaml"
    data = load_datamodule(config, batch_size=3, root=str(tmp_path / "data"))
    assert isinstance(data, SyntheticDataModule) and data.batch_size == 3
    assert str(data.root) == str(tmp_path / "data")
    no_data = tmp_path / "model_only.yaml"
    no_data.write_text("model: {}\n")
    with pytest.raises(ValueError, match="has no 'data' section"):
        load_datamodule(no_data)
    with pytest.raises(ValueError, match="could not build the data section"):
        load_datamodule(config, no_such_argument=1)


def test_the_streaming_config_builds_its_datamodule_over_a_shard_set(tmp_path):
    pytest.importorskip("litdata", reason="the stream extra (litdata) is not installed")
    from s2dm_lightning.data.streaming import StreamingVideoDataModule

    config = Path(__file__).resolve().parents[1] / "configs" / "synthetic_streaming.yaml"
    data = load_datamodule(config, input_dir=str(tmp_path / "shards"), batch_size=2)
    assert isinstance(data, StreamingVideoDataModule) and data.batch_size == 2
    assert data.expected == {"resolution": 32, "flow_size": 32, "num_frames": 16, "frame_geometry": None}
    with pytest.raises(FileNotFoundError, match="data.init_args.input_dir=.*no shard set"):
        data.setup("fit")  # read only when used: the config parses before anything is packed
