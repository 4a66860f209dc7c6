"""The shared plumbing of the diffusion modules: seed rules, sampling settings passed per call."""

from __future__ import annotations

import pytest
import torch

from s2dm_lightning.models.diffusion_module import (
    RANK_SEED_STRIDE,
    RUN_SEED_STRIDE,
    STEP_SEED_STRIDE,
    SamplingSettings,
    evaluation_seeds,
    training_generator,
)
from tests.conftest import UNetInputs, fake_batch
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
