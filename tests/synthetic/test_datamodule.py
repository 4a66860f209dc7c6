"""SyntheticDataModule passes its world to the generator and checks it when built."""

from __future__ import annotations

import json

import pytest

from s2dm_lightning.synthetic import SyntheticDataModule


def test_world_reaches_the_generated_dataset(tmp_path):
    module = SyntheticDataModule(root=str(tmp_path / "ds"), num_videos=4, frames_per_video=4, image_size=16,
                                 world="disocclusion")
    root = module.generate()
    assert json.loads((root / "generation.json").read_text())["world"] == "disocclusion"
    assert len(list((root / "ground_truth").glob("*.npz"))) == 4
    assert all(r.caption.split()[1] in ("rotating", "growing", "shrinking") for r in module.list_records())


def test_unknown_world_names_the_key():
    with pytest.raises(ValueError, match="data.init_args.world must be one of 'default', 'disocclusion', 'textured'; got 'pan'"):
        SyntheticDataModule(world="pan")
