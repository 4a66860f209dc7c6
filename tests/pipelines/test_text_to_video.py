"""The three-step pipeline: one z_T for the reference frame and the video, seeds, motion transfer, test wrapper."""

from __future__ import annotations

import pytest
import torch

from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.pipelines import TwoStageS2DM, TwoStageTextToVideo
from tests.conftest import UNetInputs, assert_equal_to_batch_rounding, fake_batch
from tests.pipelines.conftest import SIZE, tiny_flow_generator, tiny_s2dm

PROMPTS = ["a red square moves up", "a blue circle moves to the left"]


def make_pipeline(with_flow_generator: bool = True) -> TwoStageTextToVideo:
    return TwoStageTextToVideo(tiny_s2dm(), tiny_flow_generator() if with_flow_generator else None)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_reference_frame_and_video_start_from_the_same_z_T(eta):
    pipeline = TwoStageTextToVideo(tiny_s2dm(eta=eta), tiny_flow_generator())
    s2dm_inputs = UNetInputs(pipeline.s2dm.unet)
    flow_inputs = UNetInputs(pipeline.flow_generator.unet)
    out = pipeline(PROMPTS, seed=3, num_frames=4)
    b, f = 2, 4
    assert len(s2dm_inputs.calls) == 4  # (a) 2 DDIM steps, then (c) 2 DDIM steps
    first_a = s2dm_inputs.calls[0][0][:b, :3]  # conditional branch, x_t channels (flow channels follow)
    first_c = s2dm_inputs.calls[2][0][: b * f, :3].view(b, f, 3, SIZE, SIZE)
    assert s2dm_inputs.calls[0][0].shape[0] == 2 * b * 1 and s2dm_inputs.calls[2][0].shape[0] == 2 * b * f
    for frame in range(f):
        assert torch.equal(first_c[:, frame], first_a), f"frame {frame} of step (c) does not start from z_T of (a)"
    assert torch.equal(first_a, out.initial_noise)
    assert not torch.equal(first_a[0], first_a[1]), "each video has its own z_T"
    # step (a) is conditioned on the identity flow: displacement 0, occlusion 1 (S2DM's input channels)
    no_motion = torch.cat([torch.zeros(b, 2, SIZE, SIZE), torch.ones(b, 1, SIZE, SIZE)], dim=1)
    assert torch.equal(s2dm_inputs.calls[0][0][:b, 3:], no_motion)
    # step (b) sees the reference frame of step (a) on every frame
    flow_sample = flow_inputs.calls[0][0]
    for frame in range(f):
        torch.testing.assert_close(flow_sample[:b, 3:, frame], out.reference_frames)
    # step (c) is conditioned on the generated flows; frame 1 (identity flow, same z_T and, with eta > 0,
    # the same later draws) reproduces the reference frame, up to rounding: (a) ran a batch of b frames,
    # (c) one of b * f
    assert out.frames.shape == (b, f, 3, SIZE, SIZE) and out.flows.shape == (b, f, 3, SIZE, SIZE)
    assert torch.equal(out.flows[:, 0], identity_condition(SIZE, SIZE).expand(b, 3, SIZE, SIZE))
    assert_equal_to_batch_rounding(out.frames[:, 0], out.reference_frames, unlike=out.reference_frames.flip(0))


def test_a_seed_gives_the_same_video_twice():
    pipeline = make_pipeline()
    first = pipeline(PROMPTS[1:], seed=7, num_frames=4)
    again = pipeline(PROMPTS[1:], seed=7, num_frames=4)
    other = pipeline(PROMPTS[1:], seed=8, num_frames=4)
    # the same call twice: the same computation, bit for bit
    assert torch.equal(first.frames, again.frames) and torch.equal(first.flows, again.flows)
    assert not torch.allclose(first.frames, other.frames)
    # video k is drawn from seed + k alone: it does not depend on the other prompts of the call (up to
    # the rounding of a batch of 2 instead of 1)
    pair = pipeline(PROMPTS, seed=6, num_frames=4)
    assert_equal_to_batch_rounding(pair.frames[1:], first.frames, unlike=other.frames)
    assert pair.seeds == [6, 7]


def test_reference_flows_replace_stage_one():
    pipeline = make_pipeline(with_flow_generator=False)
    flows = identity_condition(16, 16).expand(1, 5, 3, 16, 16).clone()
    flows[:, 1:, 0] += 0.3  # a shift, at another resolution than the S2DM's
    out = pipeline(PROMPTS, seed=0, reference_flows=flows)
    assert out.flows.shape == (2, 5, 3, SIZE, SIZE)
    shift = out.flows[:, 1:, 0] - identity_condition(SIZE, SIZE)[0]
    torch.testing.assert_close(shift, torch.full((2, 4, SIZE, SIZE), 0.3))
    with pytest.raises(ValueError, match="no flow generator"):
        pipeline(PROMPTS, seed=0)
    with pytest.raises(ValueError, match="reference_flows must have shape"):
        pipeline(PROMPTS, seed=0, reference_flows=flows.expand(3, -1, -1, -1, -1))


def test_two_stage_module_test_step_returns_the_s2dm_test_dict_from_captions_only():
    module = TwoStageS2DM.from_pipeline(make_pipeline(), sampling_seed=5)
    batch = fake_batch(num_videos=2, num_frames=4, size=SIZE, flow_size=SIZE)
    out = module.test_step(batch, 0)
    assert {"videos", "real", "flow", "caption", "video_id"} <= set(out)
    assert out["videos"].shape == batch["frames"].shape and torch.equal(out["real"], batch["frames"])
    assert out["caption"] == batch["caption"] and out["video_id"] == batch["video_id"]
    assert not torch.allclose(out["flow"], batch["flow"]), "text-only mode must not use the real flows"
    direct = module.pipeline(batch["caption"], seed=[5, 6], num_frames=4)
    assert torch.equal(out["videos"], direct.frames)
    batch["sample_index"] = torch.tensor([10, 3])  # seeds follow the dataset index, as in S2DM's evaluation
    assert module.evaluation_seeds(batch, 0) == [15, 8]
    module.evaluation_run = 1  # the test protocol's --n_runs moves every run to new seeds
    assert not torch.allclose(module.test_step(batch, 0)["videos"], out["videos"])

    control = TwoStageS2DM.from_pipeline(make_pipeline(with_flow_generator=False), flow_source="real")
    assert torch.equal(control.test_step(batch, 0)["flow"], batch["flow"])


def test_two_stage_module_names_missing_checkpoints():
    with pytest.raises(ValueError, match="model.init_args.s2dm_ckpt"):
        TwoStageS2DM(s2dm_config="configs/synthetic.yaml", flow_config="x.yaml", flow_ckpt="x.ckpt").configure_model()


def test_an_sde_sampler_gives_steps_a_and_c_the_same_draws():
    """With DPM-Solver++ SDE chosen per call, frame 1 of the video (identity flow) still reproduces the
    reference frame: z_T and every SDE draw are shared by (a) and (c), as DDIM's eta draws are."""
    pipeline = make_pipeline()
    inputs = UNetInputs(pipeline.s2dm.unet)
    options = {"algorithm_type": "sde-dpmsolver++"}
    out = pipeline(PROMPTS, seed=3, num_frames=4, sampler="DPMSolverMultistepScheduler", sampler_options=options)
    assert len(inputs.calls) == 4  # 2 solver steps for (a), 2 for (c)
    assert_equal_to_batch_rounding(out.frames[:, 0], out.reference_frames, unlike=out.reference_frames.flip(0))
    ddim = pipeline(PROMPTS, seed=3, num_frames=4)
    assert (ddim.reference_frames - out.reference_frames).abs().amax() > 1e-3, "the sampler was used"
