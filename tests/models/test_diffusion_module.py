"""The shared plumbing of the diffusion modules: seed rules, sampling settings passed per call."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from s2dm_lightning.diffusion import sector_sample
from s2dm_lightning.models.diffusion_module import (
    RANK_SEED_STRIDE,
    RUN_SEED_STRIDE,
    STEP_SEED_STRIDE,
    SamplingSettings,
    evaluation_seeds,
    training_generator,
)
from tests.conftest import UNetInputs, assert_equal_to_batch_rounding, fake_batch
from tests.pipelines.conftest import SIZE, tiny_flow_generator, tiny_s2dm


def _first_draw(generator: torch.Generator) -> torch.Tensor:
    return torch.randn(4, generator=generator)


def test_training_generator_seeds_by_rank_and_step_and_is_kept_while_on_its_device():
    torch.manual_seed(11)
    base = torch.initial_seed()
    cpu = torch.device("cpu")
    draws = {(r, s): _first_draw(training_generator(None, cpu, r, s)) for r in (0, 1) for s in (0, 5)}
    assert len({tuple(d.tolist()) for d in draws.values()}) == 4, "ranks and steps draw different noise"
    expected = torch.Generator().manual_seed(base + RANK_SEED_STRIDE * 1 + STEP_SEED_STRIDE * 5)
    torch.testing.assert_close(draws[(1, 5)], _first_draw(expected), rtol=0, atol=0)
    current = training_generator(None, cpu, 0, 0)
    assert training_generator(current, cpu, 1, 9) is current, "a generator in use is not re-seeded mid-run"


def test_evaluation_seeds_follow_the_dataset_index_and_the_run():
    batch = {"caption": ["a", "b"], "sample_index": torch.tensor([10, 3])}
    assert evaluation_seeds(5, 0, batch, 7) == [15, 8]
    assert evaluation_seeds(5, 2, batch, 7) == [15 + 2 * RUN_SEED_STRIDE, 8 + 2 * RUN_SEED_STRIDE]
    assert evaluation_seeds(5, 0, {"caption": ["a", "b"]}, 3) == [11, 12], "no sample_index: position"


def test_sampling_settings_come_from_the_arguments_and_a_bad_scale_names_its_key():
    model = tiny_s2dm(num_inference_steps=3, eta=0.5, guidance_mode="separate", flow_guidance_scale=2.5)
    assert (model.sampling.num_inference_steps, model.sampling.eta) == (3, 0.5)
    assert (model.sampling.guidance.mode, model.sampling.guidance.flow_scale) == ("separate", 2.5)
    flow = tiny_flow_generator(reference_guidance_scale=4.0, guidance_mode="separate")
    assert flow.sampling.guidance.flow_scale == 4.0, "the flow generator's second condition is the reference"
    assert model.sampling.replace(num_inference_steps=None, eta=0.0) == SamplingSettings(3, 0.0, model.guidance)
    with pytest.raises(ValueError, match="model.init_args.reference_guidance_scale must be >= 0, got -1"):
        tiny_flow_generator(reference_guidance_scale=-1)


def test_sampling_settings_of_one_call_leave_the_model_unchanged():
    model = tiny_s2dm(num_inference_steps=2).eval()
    calls = UNetInputs(model.unet)
    batch = fake_batch(num_videos=1, num_frames=2, size=SIZE, flow_size=SIZE)
    model.sample_videos(batch, torch.Generator().manual_seed(0), sampling=model.sampling.replace(num_inference_steps=3))
    assert len(calls.calls) == 3
    model.sample_videos(batch, torch.Generator().manual_seed(0))
    assert len(calls.calls) == 3 + 2, "the next call samples with the model's own settings again"
    assert model.hparams.num_inference_steps == 2 and model.sampling.num_inference_steps == 2


def test_a_multistep_sampler_of_the_model_keeps_the_sector_at_the_network_inputs():
    """DPM-Solver++ SDE as the model's sampler: the UNet inputs of every step (all branches) hold the
    same x_t for every frame of a video when the frames' conditions are identical (one z_T, shared SDE
    draws; other rows of the network batch: equal up to its rounding), and the two videos differ."""
    model = tiny_s2dm(num_inference_steps=3, sampler="DPMSolverMultistepScheduler",
                      sampler_options={"algorithm_type": "sde-dpmsolver++"}).eval()
    assert type(model.sampling.scheduler(model.noise_scheduler.config)).__name__ == "DPMSolverMultistepScheduler"
    inputs = UNetInputs(model.unet)
    batch = fake_batch(num_videos=2, num_frames=3, size=SIZE, flow_size=SIZE)
    batch["flow"] = batch["flow"][:, :1].expand(-1, 3, -1, -1, -1).clone()  # one condition for all frames
    model.sample_videos(batch, [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)])
    assert len(inputs.calls) == 3
    for step, (sample, _, _) in enumerate(inputs.calls):
        x_t = sample[:, :3].reshape(-1, 2, 3, 3, SIZE, SIZE)  # (branches, videos, frames, C, H, W); then the flow
        for frame in (1, 2):
            if step == 0:  # z_T itself, broadcast: bit for bit
                assert torch.equal(x_t[:, :, frame], x_t[:, :, 0])
            assert_equal_to_batch_rounding(x_t[:, :, frame], x_t[:, :, 0], unlike=x_t[:, :, 0].flip(1))


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_the_default_sampler_is_the_ddim_of_before(eta):
    """The default path (sampler DDIMScheduler) gives what sampling gave before the option existed: DDIM
    built straight from the training schedule, the same draws (same batch: 1e-6 covers any reordering)."""
    model = tiny_s2dm(num_inference_steps=3, eta=eta).eval()
    batch = fake_batch(num_videos=2, num_frames=2, size=SIZE, flow_size=SIZE)
    ours = model.sample_videos(batch, torch.Generator().manual_seed(3))
    before = sector_sample(model.make_denoiser(list(batch["caption"]), batch["flow"]),
                           DDIMScheduler.from_config(model.noise_scheduler.config), 2, 2, model.frame_shape(),
                           num_inference_steps=3, eta=eta, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours, model.decode_frames(before), atol=1e-6, rtol=0)
    other_seed = model.sample_videos(batch, torch.Generator().manual_seed(4))
    assert (other_seed - ours).abs().amax() > 0.1


def test_a_bad_sampler_names_its_key():
    with pytest.raises(ValueError, match="model.init_args.sampler='EulerAncestralDiscreteScheduler': its step draws"):
        tiny_s2dm(sampler="EulerAncestralDiscreteScheduler")
    with pytest.raises(ValueError, match="eta=0.5 is DDIM's stochasticity; model.init_args.sampler='UniPC"):
        tiny_s2dm(sampler="UniPCMultistepScheduler", eta=0.5)
