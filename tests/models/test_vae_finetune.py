"""The VAE fine-tuning stage: random single frames, 2 steps through the CLI, output loads into S2DM."""

from __future__ import annotations

import torch
import yaml
from diffusers import AutoencoderKL

from s2dm_lightning.cli import main
from s2dm_lightning.data import FrameDataModule
from s2dm_lightning.models import S2DM
from s2dm_lightning.synthetic import SyntheticDataModule
from tests.latent_fixtures import DATA_ARGS, FRAME_SIZE


def test_frames_come_from_different_videos_at_random(synthetic_root):
    frames = FrameDataModule(SyntheticDataModule(root=str(synthetic_root), **DATA_ARGS), frames_per_epoch=5,
                             batch_size=5, val_frames=2)
    frames.setup("fit")
    batch = next(iter(frames.train_dataloader()))
    assert batch["frames"].shape == (5, 3, FRAME_SIZE, FRAME_SIZE) and batch["frames"].abs().max() <= 1
    assert len(set(batch["video_id"])) == 5, "item i is a frame of video i % 5: each video once an epoch"
    train = frames.datasets["train"]
    drawn = {int(train[0]["frame_index"]) for _ in range(12)}
    assert len(drawn) > 1, "training frames are drawn at random"
    val = frames.datasets["val"]
    assert len(val) == 1 and [val[0]["frame_index"] for _ in range(3)] == [4, 4, 4]  # the middle of 8 frames


def test_two_fine_tuning_steps_write_a_vae_that_s2dm_loads(tmp_path, tiny_sd, synthetic_root):
    out = tmp_path / "mug-vae"
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "max_steps": 2, "limit_val_batches": 1, "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False,
                    "default_root_dir": str(tmp_path)},
        "model": {"class_path": "s2dm_lightning.models.VAEFineTune",
                  "init_args": {"pretrained": str(tiny_sd), "output_dir": str(out), "learning_rate": 1e-3}},
        "data": {"class_path": "s2dm_lightning.data.FrameDataModule",
                 "init_args": {"videos": {"class_path": "s2dm_lightning.synthetic.SyntheticDataModule",
                                          "init_args": {"root": str(synthetic_root), **DATA_ARGS}},
                               "frames_per_epoch": 4, "batch_size": 2, "val_frames": 2}},
    }
    (tmp_path / "vae.yaml").write_text(yaml.safe_dump(config))
    main(["fit", "--config", str(tmp_path / "vae.yaml")])

    original = AutoencoderKL.from_pretrained(tiny_sd / "vae")
    tuned = AutoencoderKL.from_pretrained(out)
    for part in ("encoder", "decoder"):
        before, after = getattr(original, part).state_dict(), getattr(tuned, part).state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before), f"the {part} was trained"
    model = S2DM(pretrained=str(tiny_sd), vae_path=str(out), flow_fusion="tokens", flow_size=4)
    for name, value in tuned.state_dict().items():
        torch.testing.assert_close(model.vae.state_dict()[name], value, rtol=0, atol=0)
