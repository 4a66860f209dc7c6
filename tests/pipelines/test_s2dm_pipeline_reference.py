"""S2DMPipeline with a reference-frame model (image-to-video): image=, the mismatch error, save/load."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import PIL.Image
import pytest
import torch

from s2dm_lightning.commands.checkpoint_config import CheckpointConfigConflict, reconcile
from s2dm_lightning.models import S2DM
from s2dm_lightning.models.export import load_pretrained, save_pretrained
from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline
from tests.conftest import HashTextEncoder, fake_batch, tiny_unet
from tests.pipelines.conftest import SIZE, tiny_s2dm
from tests.tiny_sd import make_tiny_sd_folder

# Same code and batch make-up on both sides; the tolerance only absorbs float32 kernel choices (conftest).
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def warped_latent_model(tmp_path_factory) -> S2DM:
    """A tiny SD-shaped latent S2DM with the warped reference; every weight moved off its initial value
    (the grown conv_in channels start at zero, where the reference would change nothing)."""
    sd = make_tiny_sd_folder(tmp_path_factory.mktemp("sd") / "stable-diffusion-v1-5")
    torch.manual_seed(0)
    model = S2DM(pretrained=str(sd), flow_fusion="both", flow_size=4, sample_size=4, num_inference_steps=2,
                 guidance_scale=3.0, reference_condition="warped").eval()
    with torch.no_grad():
        for p in [*model.unet.parameters(), *model.flow_conditioner.parameters()]:
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model


def _generators(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_pretrained_unet_grows_by_the_reference_channels(warped_latent_model):
    assert warped_latent_model.unet.config.in_channels == 4 + 3 + 5  # latents + flow + warped latent & visibility


def test_image_path_gives_frames_of_the_right_shape_and_uses_the_image(warped_latent_model):
    pipe = S2DMPipeline.from_s2dm(warped_latent_model)
    pipe.set_progress_bar_config(disable=True)
    batch = fake_batch(num_videos=2, num_frames=3, size=32, flow_size=4)
    rng = np.random.default_rng(0)
    image = PIL.Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))  # resized to 32 x 32
    frames = pipe(batch["caption"], batch["flow"], image=image, generator=_generators(0, 1)).frames
    assert frames.shape == (2, 3, 32, 32, 3) and frames.min() >= 0 and frames.max() <= 1

    tensor = torch.from_numpy(np.array(image.resize((32, 32)))).permute(2, 0, 1)[None].float() / 127.5 - 1
    from_pipe = pipe(batch["caption"], batch["flow"], image=tensor, generator=_generators(0, 1), output_type="pt")
    from_model = (warped_latent_model.sample_videos(batch, _generators(0, 1), image=tensor) + 1) / 2
    torch.testing.assert_close(from_pipe.frames, from_model, atol=TOLERANCE, rtol=0)
    dropped = pipe(batch["caption"], batch["flow"], generator=_generators(0, 1), output_type="pt").frames
    assert (dropped - from_pipe.frames).abs().amax() > 100 * TOLERANCE, "the image changes the video"


def test_image_for_a_pipeline_without_reference_condition_is_refused():
    pipe = S2DMPipeline.from_s2dm(tiny_s2dm())
    batch = fake_batch(num_videos=1, num_frames=2)
    with pytest.raises(ValueError, match="reference_condition='none'"):
        pipe(batch["caption"], batch["flow"], image=np.zeros((SIZE, SIZE, 3), dtype=np.uint8))


def test_save_pretrained_round_trip_keeps_reference_condition(warped_latent_model, tmp_path):
    folder = save_pretrained(warped_latent_model, tmp_path / "i2v")
    assert json.loads((folder / "model_index.json").read_text())["reference_condition"] == "warped"
    assert S2DMPipeline.from_pretrained(folder).config.reference_condition == "warped"
    rebuilt = load_pretrained(folder)
    assert rebuilt.hparams.reference_condition == "warped" and rebuilt.unet.config.in_channels == 12


def test_lightning_checkpoint_keeps_reference_condition(tmp_path):
    """One training step, the checkpoint's hparams, and a config of another reference condition refused."""
    model = S2DM(tiny_unet(sample_size=SIZE, in_channels=6 + 3), HashTextEncoder(), flow_fusion="both",
                 flow_size=SIZE, reference_condition="frame", reference_dropout=0.2)
    batches = [fake_batch(num_videos=2, num_frames=2)]
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    trainer.save_checkpoint(tmp_path / "i2v.ckpt")
    hparams = torch.load(tmp_path / "i2v.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["reference_condition"] == "frame" and hparams["reference_dropout"] == 0.2

    loaded = S2DM.load_from_checkpoint(tmp_path / "i2v.ckpt", unet=tiny_unet(sample_size=SIZE, in_channels=9),
                                       text_encoder=HashTextEncoder(), weights_only=True)
    assert loaded.hparams.reference_condition == "frame"
    with pytest.raises(CheckpointConfigConflict, match="model.init_args.reference_condition: checkpoint frame, config none"):
        reconcile(dict(hparams), {"class_path": "s2dm_lightning.models.S2DM",
                                  "init_args": {**hparams, "reference_condition": "none"}}, str(tmp_path / "i2v.ckpt"))
