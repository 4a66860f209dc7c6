"""``sample`` with a pipeline folder (written by ``export``) and a parametric ``--motion``."""

from __future__ import annotations

import torch

from s2dm_lightning.cli import main
from s2dm_lightning.models import S2DM, MiniLMTextEncoder
from s2dm_lightning.models.export import save_pretrained
from s2dm_lightning.pipelines.motion import translate_flows
from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline
from tests.conftest import tiny_unet
from tests.pipelines.conftest import SIZE


def test_sample_from_a_pipeline_folder_with_a_formula_is_the_pipelines_video(tmp_path):
    encoder = MiniLMTextEncoder(max_length=8)
    model = S2DM(tiny_unet(sample_size=SIZE, in_channels=6, cross_dim=encoder.width), encoder, flow_fusion="both",
                 flow_size=SIZE, flow_patch_size=4, num_inference_steps=2, guidance_scale=2.0).eval()
    save_pretrained(model, tmp_path / "pipe")
    main(["sample", "--prompt", "a red square moves up", f"--pipeline={tmp_path / 'pipe'}", "--motion=translate:7,0",
          "--num_frames=4", "--scale=1", "--seed=3", f"--output_dir={tmp_path / 'out'}"])
    saved = torch.load(tmp_path / "out" / "samples.pt", weights_only=True)
    # 7 px of the 8-px generated frame = 7 px of the 8-px flow map, spread over 4 frames
    assert torch.equal(saved["flows"][0], translate_flows(7, 0, SIZE, 4))
    assert saved["arguments"]["motion"] == "translate:7,0"
    pipe = S2DMPipeline.from_pretrained(tmp_path / "pipe")
    pipe.set_progress_bar_config(disable=True)
    video = pipe("a red square moves up", saved["flows"], generator=torch.Generator().manual_seed(3),
                 output_type="pt").frames
    # same folder, same seed, same single-video batch: the sample command and the pipeline agree
    torch.testing.assert_close(video, (saved["frames"] + 1) / 2, atol=1e-6, rtol=0)
