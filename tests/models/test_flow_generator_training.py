"""Stage one (eps_phi): training, what the 3D UNet receives, sampling with frame 1 = identity."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.models.flow_generator import diffusion_to_flow, flow_to_diffusion
from tests.conftest import UNetInputs, fake_batch
from tests.pipelines.conftest import SIZE, tiny_flow_generator, tiny_unet3d


def items(num_videos: int, num_frames: int = 16, size: int = 16):
    batch = fake_batch(num_videos=num_videos, num_frames=num_frames, size=size, flow_size=size)
    return [{k: v[i] for k, v in batch.items()} for i in range(num_videos)]


def test_trains_two_steps_then_samples_a_sequence_whose_first_frame_is_the_identity():
    model = tiny_flow_generator()
    before = [p.detach().clone() for p in model.unet.parameters()]
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, DataLoader(items(4), batch_size=2))  # data flows 16 x 16 -> generated at 8 x 8
    assert trainer.global_step == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, model.unet.parameters(), strict=True))

    reference = torch.rand(2, 3, 16, 16) * 2 - 1
    flows = model.sample_flows(reference, ["a red square moves up", "a blue circle moves down"],
                               generator=torch.Generator().manual_seed(0))
    assert flows.shape == (2, 16, 3, SIZE, SIZE)
    assert torch.isfinite(flows).all()
    assert torch.equal(flows[:, 0], identity_condition(SIZE, SIZE).expand(2, 3, SIZE, SIZE))
    assert not torch.allclose(flows[:, 1:], flows[:, :1].expand_as(flows[:, 1:]))
    assert ((flows[:, :, 2] >= 0) & (flows[:, :, 2] <= 1)).all(), "occlusion stays in [0, 1]"


def test_the_unet_sees_noisy_flows_with_the_reference_frame_on_every_frame():
    model = tiny_flow_generator()
    inputs = UNetInputs(model.unet)
    batch = fake_batch(num_videos=3, num_frames=5, size=SIZE, flow_size=SIZE)
    model.diffusion_loss(batch, torch.Generator().manual_seed(0))
    sample, t, _ = inputs.calls[0]
    assert sample.shape == (3, 6, 5, SIZE, SIZE)  # (B, 3 flow + 3 reference, F, h, w)
    for f in range(5):  # reference frame (kept with p = 0.9 here) on every frame, or zeros when dropped
        ref = sample[:, 3:, f]
        kept = ref.flatten(1).abs().sum(1) > 0
        torch.testing.assert_close(ref[kept], batch["frames"][kept, 0])
    # independent noise per frame: (x_t - sqrt(a) x_0) / sqrt(1 - a) differs between frames
    x0 = flow_to_diffusion(batch["flow"], model.hparams.displacement_scale).transpose(1, 2)
    a = model.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1, 1)
    noise = (sample[:, :3] - a.sqrt() * x0) / (1 - a).sqrt()
    assert (noise[:, :, 1:] - noise[:, :, :1]).abs().amax() > 0.5


def test_condition_dropout_gives_zero_reference_and_the_empty_prompt():
    model = tiny_flow_generator(text_dropout=1.0, reference_dropout=1.0)
    inputs = UNetInputs(model.unet)
    model.diffusion_loss(fake_batch(num_videos=2, num_frames=3, size=SIZE, flow_size=SIZE),
                         torch.Generator().manual_seed(0))
    sample, _, hidden = inputs.calls[0]
    assert sample[:, 3:].abs().max() == 0
    torch.testing.assert_close(hidden, model.text_condition([""]).expand_as(hidden))


def test_guided_sampling_calls_the_network_once_per_step_with_both_branches():
    model = tiny_flow_generator()
    inputs = UNetInputs(model.unet)
    model.sample_flows(torch.zeros(2, 3, SIZE, SIZE), ["a", "b"], num_frames=4)
    assert len(inputs.calls) == 2  # 2 DDIM steps
    assert inputs.calls[0][0].shape == (4, 6, 4, SIZE, SIZE)  # (cond, uncond) x 2 sequences
    assert inputs.calls[0][0][2:, 3:].abs().max() == 0, "the unconditional branch has no reference"


def test_flow_representation():
    flow = fake_batch(num_videos=2, num_frames=3, size=16, flow_size=16)["flow"]
    torch.testing.assert_close(diffusion_to_flow(flow_to_diffusion(flow, 2.5), 2.5), flow)
    identity = identity_condition(16, 16)
    assert torch.equal(flow_to_diffusion(identity, 2.0)[:2], torch.zeros(2, 16, 16))


def test_unet_channels_are_checked():
    from s2dm_lightning.models import FlowGenerator
    from tests.conftest import HashTextEncoder

    with pytest.raises(ValueError, match="in_channels=6"):
        FlowGenerator(tiny_unet3d(in_channels=3), HashTextEncoder())
    with pytest.raises(ValueError, match="cross_attention_dim"):
        FlowGenerator(tiny_unet3d(cross_dim=16), HashTextEncoder())


@pytest.mark.parametrize("kind", ["epsilon", "sample", "v_prediction"])
def test_training_target_follows_the_prediction_type(kind):
    from diffusers import DDPMScheduler

    model = tiny_flow_generator(noise_scheduler=DDPMScheduler(prediction_type=kind))
    x0, noise, t = torch.randn(2, 3, 3, 4, 4), torch.randn(2, 3, 3, 4, 4), torch.tensor([10, 900])
    a = model.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1, 1)
    expected = {"epsilon": noise, "sample": x0, "v_prediction": a.sqrt() * noise - (1 - a).sqrt() * x0}[kind]
    torch.testing.assert_close(model.training_target(x0, noise, t), expected)
    flows = model.sample_flows(torch.zeros(1, 3, SIZE, SIZE), ["a"], num_frames=3)  # DDIM reads the same type
    assert torch.isfinite(flows).all()


def test_latent_reference_and_clip_text_from_a_local_sd_folder(tmp_path):
    """``pretrained`` gives the CLIP text encoder, ``vae_path`` the reference frame's latent (paper configs)."""
    from s2dm_lightning.models import FlowGenerator
    from s2dm_lightning.models.text_encoder import CLIPTextEncoder
    from tests.tiny_sd import make_tiny_sd_folder

    folder = make_tiny_sd_folder(tmp_path / "sd")
    model = FlowGenerator(tiny_unet3d(in_channels=7, cross_dim=768), pretrained=str(folder), vae_path=str(folder))
    assert isinstance(model.text_encoder, CLIPTextEncoder) and model.vae is not None
    inputs = UNetInputs(model.unet)
    batch = fake_batch(num_videos=2, num_frames=3, size=32, flow_size=SIZE)
    model.hparams.reference_dropout = 0.0
    model.diffusion_loss(batch, torch.Generator().manual_seed(0))
    sample = inputs.calls[0][0]
    assert sample.shape == (2, 7, 3, SIZE, SIZE)
    latent = model.vae.encode(batch["frames"][:, 0]).latent_dist.mode() * model.vae.config.scaling_factor
    expected = torch.nn.functional.interpolate(latent, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    torch.testing.assert_close(sample[:, 3:, 0], expected)
    with pytest.raises(ValueError, match="text_encoder or model.init_args.pretrained"):
        FlowGenerator(tiny_unet3d())
