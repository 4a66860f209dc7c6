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
