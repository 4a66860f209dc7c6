"""``sample --image``: image-to-video through the command's function with a tiny reference model."""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch

from s2dm_lightning.commands.sample import sample
from s2dm_lightning.config import load_module
from s2dm_lightning.models import S2DM
from s2dm_lightning.pipelines.reference_image import load_reference_image, reference_image_tensor
from tests.pipelines.conftest import S2DM_YAML, SIZE

# The pipelines' tiny S2DM with the warped reference: conv_in 3 RGB + 3 flow + 4 reference channels.
I2V_YAML = S2DM_YAML.replace("in_channels: 6", "in_channels: 10") + "    reference_condition: warped\n"


def test_sample_with_image_conditions_on_the_resized_file(tmp_path):
    config = tmp_path / "i2v.yaml"
    config.write_text(I2V_YAML)
    torch.manual_seed(0)
    model = load_module(config, None, S2DM)
    assert model.hparams.reference_condition == "warped"
    checkpoint = tmp_path / "i2v.ckpt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    picture = tmp_path / "first.png"
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(picture)

    def run(image, out):
        return sample(prompt="a red square moves right", s2dm_config=str(config), s2dm_ckpt=str(checkpoint),
                      motion="translate:2,0",
                      num_frames=3, image=image, output_dir=str(tmp_path / out), scale=1)

    written = torch.load(run(str(picture), "with") / "samples.pt", weights_only=True)
    expected = reference_image_tensor(load_reference_image(picture), SIZE)  # 12 px -> the model's 8 px
    assert written["frames"].shape == (1, 3, 3, SIZE, SIZE)
    assert torch.equal(written["reference_frames"], expected) and written["arguments"]["image"] == str(picture)
    without = torch.load(run(None, "without") / "samples.pt", weights_only=True)  # reference dropped
    assert (without["frames"] - written["frames"]).abs().amax() > 1e-2
