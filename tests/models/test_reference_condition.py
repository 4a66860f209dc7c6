"""s2dm_lightning/models/reference_condition.py and its use in S2DM: the reference-frame input channels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from s2dm_lightning.diffusion import (
    add_noise_to_videos,
    sample_condition_keep,
    sample_video_noise,
    sample_video_timesteps,
)
from s2dm_lightning.models import S2DM
from s2dm_lightning.models.reference_condition import reference_channel_count, reference_channels
from tests.conftest import HashTextEncoder, UNetInputs, fake_batch, tiny_unet
from tests.pipelines.conftest import SIZE, tiny_s2dm

FLOW_AND_FRAME = 6  # 3 RGB + 3 flow channels of the tiny flow_fusion=both model


def reference_s2dm(mode: str, **kwargs) -> S2DM:
    """The tiny model of tests/pipelines/conftest.py with a reference condition (its conv_in grown)."""
    kwargs = {"num_inference_steps": 2, "guidance_scale": 2.0, **kwargs}
    in_channels = FLOW_AND_FRAME + reference_channel_count(mode, 3)
    return S2DM(tiny_unet(sample_size=SIZE, in_channels=in_channels), HashTextEncoder(), flow_fusion="both",
                flow_size=SIZE, reference_condition=mode, **kwargs)


def training_inputs(model: S2DM, batch: dict, seed: int = 3) -> torch.Tensor:
    """The UNet's input sample of one training step (``diffusion_loss`` with a seeded generator)."""
    inputs = UNetInputs(model.unet)
    with torch.no_grad():
        model.diffusion_loss(batch, torch.Generator().manual_seed(seed))
    assert len(inputs.calls) == 1
    return inputs.calls[0][0]


def moving_flow(num_rows: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Conditions (N, 3, size, size) of random per-pixel motions, their grids built independently of
    flow_format: pixel displacement -> [-1, 1] units with align_corners=True (the project's convention:
    border pixel centres at -1 and 1, so one pixel is 2 / (size - 1))."""
    g = torch.Generator().manual_seed(seed)
    displacement_px = (torch.rand(num_rows, 2, size, size, generator=g) - 0.5) * 6  # up to 3 px each way
    coords = torch.linspace(-1, 1, size)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    grid = torch.stack([xs, ys]).unsqueeze(0) + displacement_px * 2 / (size - 1)
    visibility = torch.rand(num_rows, 1, size, size, generator=g)
    return torch.cat([grid, visibility], dim=1), grid, visibility


def test_channel_counts():
    assert [reference_channel_count(m, 4) for m in ("none", "frame", "warped")] == [0, 4, 5]


def test_none_model_unet_inputs_are_todays():
    """reference_condition none: the input is x_t + flow channels, from the same draws as before the option."""
    model = tiny_s2dm(text_dropout=0.5, flow_dropout=0.5)
    batch = fake_batch(num_videos=4, num_frames=3)
    actual = training_inputs(model, batch, seed=3)

    g = torch.Generator().manual_seed(3)  # the draw order of diffusion_loss: nu, t, text keep, flow keep
    x0 = batch["frames"]
    b, f = x0.shape[:2]
    nu = sample_video_noise(b, f, tuple(x0.shape[2:]), "shared", g)
    t = sample_video_timesteps(b, f, 1000, "shared", g)
    x_t = add_noise_to_videos(model.noise_scheduler.alphas_cumprod, x0, nu, t)
    sample_condition_keep(b, 0.5, g)
    keep_flow = sample_condition_keep(b, 0.5, g)
    flow_channels = model.flow_conditioner.channels(rearrange(batch["flow"], "b f c h w -> (b f) c h w"),
                                                    repeat(keep_flow, "b -> (b f)", f=f), (SIZE, SIZE))
    expected = torch.cat([rearrange(x_t, "b f c h w -> (b f) c h w"), flow_channels], dim=1)
    assert actual.shape == (b * f, FLOW_AND_FRAME, SIZE, SIZE)
    assert torch.equal(actual, expected)


@pytest.mark.parametrize("mode", ["frame", "warped"])
def test_dropped_reference_is_zero_and_leaves_the_other_inputs(mode):
    """reference_dropout=1: the reference channels are zero, x_t and the flow channels those of a none model."""
    batch = fake_batch(num_videos=3, num_frames=3)
    plain = training_inputs(tiny_s2dm(), batch)
    with_reference = training_inputs(reference_s2dm(mode, reference_dropout=1.0), batch)
    assert with_reference.shape[1] == FLOW_AND_FRAME + reference_channel_count(mode, 3)
    assert torch.equal(with_reference[:, :FLOW_AND_FRAME], plain)
    assert torch.count_nonzero(with_reference[:, FLOW_AND_FRAME:]) == 0


def test_kept_frame_reference_is_the_first_frame_for_every_frame():
    batch = fake_batch(num_videos=2, num_frames=3)
    inputs = training_inputs(reference_s2dm("frame", reference_dropout=0.0), batch)
    expected = repeat(batch["frames"][:, 0], "b c h w -> (b f) c h w", f=3)
    assert torch.equal(inputs[:, FLOW_AND_FRAME:], expected)


def test_warped_reference_is_grid_sample_times_visibility():
    """The warped channels against grid_sample with grids built from pixel displacements in the test."""
    b, f = 2, 3
    batch = fake_batch(num_videos=b, num_frames=f)
    condition, grid, visibility = moving_flow(b * f, SIZE)
    batch["flow"] = condition.view(b, f, 3, SIZE, SIZE)
    inputs = training_inputs(reference_s2dm("warped", reference_dropout=0.0), batch)

    reference = repeat(batch["frames"][:, 0], "b c h w -> (b f) c h w", f=f)
    # border padding, bilinear, align_corners=True: flow_format's warp convention
    warped = F.grid_sample(reference, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                           align_corners=True)
    torch.testing.assert_close(inputs[:, FLOW_AND_FRAME:FLOW_AND_FRAME + 3], warped * visibility, atol=1e-6, rtol=0)
    torch.testing.assert_close(inputs[:, FLOW_AND_FRAME + 3:], visibility, atol=1e-6, rtol=0)
    assert (warped - reference).abs().amax() > 0.1  # the motion really moves the content


def test_warped_visibility_is_resized_to_the_frame_size():
    """A 16-px flow on 8-px frames: the visibility channel is the bilinearly resized (align_corners) map."""
    condition, _, visibility = moving_flow(2, 16)
    reference = torch.rand(2, 4, 8, 8) * 2 - 1
    channels = reference_channels("warped", reference, condition, torch.tensor([True, True]))
    small = F.interpolate(visibility, size=(8, 8), mode="bilinear", align_corners=True)
    assert channels.shape == (2, 5, 8, 8)
    torch.testing.assert_close(channels[:, 4:], small, atol=1e-6, rtol=0)


def test_reference_dropout_rate_and_per_video_decision():
    """reference_dropout=0.3 over 4000 videos of 2 frames: the dropped share within 4 binomial standard
    deviations (sqrt(0.3 * 0.7 / 4000) = 0.0072, so +-0.029), both frames of a video dropped together."""
    model = reference_s2dm("frame", reference_dropout=0.3)
    b, f = 4000, 2
    frames = torch.rand(b, 1, 3, 4, 4) + 0.5  # never zero: a kept reference is never all-zero
    flow = torch.zeros(b, f, 3, 4, 4)
    channels = model._training_reference({"frames": frames}, flow, torch.Generator().manual_seed(0))
    dropped = (channels.flatten(1).abs().amax(dim=1) == 0).view(b, f)
    assert torch.equal(dropped[:, 0], dropped[:, 1])
    assert abs(dropped[:, 0].float().mean().item() - 0.3) < 4 * (0.3 * 0.7 / b) ** 0.5


def test_guidance_keeps_the_reference_in_the_conditional_branch_only():
    """Joint guidance: rows of the conditional branch carry the reference, the unconditional rows zeros;
    without an image every row's reference is zero (dropped)."""
    model = reference_s2dm("frame").eval()
    batch = {"caption": ["a", "b"], "flow": fake_batch(num_videos=2, num_frames=2)["flow"]}
    image = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    inputs = UNetInputs(model.unet)
    model.sample_videos(batch, torch.Generator().manual_seed(0), image=image)
    sample = inputs.calls[0][0]  # (branch, video, frame) rows
    conditional, unconditional = rearrange(sample[:, FLOW_AND_FRAME:], "(n b f) c h w -> n b f c h w", n=2, b=2)
    assert torch.equal(conditional, repeat(image, "b c h w -> b f c h w", f=2))
    assert torch.count_nonzero(unconditional) == 0

    inputs.calls.clear()
    model.sample_videos(batch, torch.Generator().manual_seed(0))
    assert torch.count_nonzero(inputs.calls[0][0][:, FLOW_AND_FRAME:]) == 0


def test_image_for_a_model_without_reference_condition_is_refused():
    batch = {"caption": ["a"], "flow": fake_batch(num_videos=1, num_frames=2)["flow"]}
    with pytest.raises(ValueError, match="reference_condition='none'"):
        tiny_s2dm().sample_videos(batch, image=torch.zeros(1, 3, SIZE, SIZE))


def test_unet_without_the_reference_channels_is_named():
    with pytest.raises(ValueError, match=r"in_channels=6.*reference_condition='warped'.*needs in_channels=10"):
        S2DM(tiny_unet(sample_size=SIZE, in_channels=6), HashTextEncoder(), flow_fusion="both", flow_size=SIZE,
             reference_condition="warped")


def test_dataset_batches_sample_with_their_first_frames():
    """Validation samples / predict / test: without image=, a batch with frames conditions on frame 0."""
    model = reference_s2dm("frame").eval()
    batch = fake_batch(num_videos=2, num_frames=2)
    inputs = UNetInputs(model.unet)
    model.predict_step(batch, 0)
    conditional = rearrange(inputs.calls[0][0][:, FLOW_AND_FRAME:], "(n b f) c h w -> n b f c h w", n=2, b=2)[0]
    assert torch.equal(conditional, repeat(batch["frames"][:, 0], "b c h w -> b f c h w", f=2))
