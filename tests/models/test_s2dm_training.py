"""The S2DM LightningModule: what the network really receives in training and sampling."""

import pytest
import torch

from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.models import S2DM
from tests.conftest import HashTextEncoder, UNetInputs, assert_equal_to_batch_rounding, fake_batch, tiny_unet


def make_model(fusion="both", **kwargs):
    in_channels = 6 if fusion in ("concat", "both") else 3
    return S2DM(tiny_unet(in_channels=in_channels), HashTextEncoder(), flow_fusion=fusion, flow_size=8, **kwargs)


def recovered_noise(model, x_t, t, x0):
    """nu = (x_t - sqrt(alpha_hat_t) x_0) / sqrt(1 - alpha_hat_t)  (Eq. 8 solved for nu)."""
    a = model.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    return (x_t - a.sqrt() * x0) / (1 - a).sqrt()


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_training_step_noise_and_timestep_sharing(mode):
    model = make_model(noise_sharing=mode)
    batch = fake_batch(num_videos=3, num_frames=4)
    inputs = UNetInputs(model.unet)
    model.training_step(batch, 0)
    sample, t, _ = inputs.calls[0]
    x_t = sample[:, :3]  # the first 3 channels are x_t; the rest are flow channels
    nu = recovered_noise(model, x_t, t, batch["frames"].flatten(0, 1)).view(3, 4, 3, 8, 8)
    t = t.view(3, 4)
    if mode == "shared":
        assert (t == t[:, :1]).all(), "frames of one video must share t"
        for v in range(3):
            for f in range(4):
                torch.testing.assert_close(nu[v, f], nu[v, 0], atol=2e-3, rtol=0)
        assert not torch.allclose(nu[0, 0], nu[1, 0], atol=0.1), "two videos must get different noise"
    else:
        assert (nu[:, 1:] - nu[:, :1]).abs().amax() > 0.5, "independent mode must differ between frames"


def test_training_step_warped_noise_follows_the_flow():
    """``warped``: one t per video, and frame f's nu on visible pixels is frame 1's moved by the flow."""
    from s2dm_lightning.flow_format import affine_condition

    model = make_model(noise_sharing="warped")
    batch = fake_batch(num_videos=2, num_frames=4)
    shifts = torch.tensor([[[1.0, 0.0, f], [0.0, 1.0, 0.0]] for f in range(4)])  # frame f: source x + f
    batch["flow"] = affine_condition(shifts, 8, 8)[None].expand(2, -1, -1, -1, -1).clone()
    inputs = UNetInputs(model.unet)
    model.training_step(batch, 0)
    sample, t, _ = inputs.calls[0]
    nu = recovered_noise(model, sample[:, :3], t, batch["frames"].flatten(0, 1)).view(2, 4, 3, 8, 8)
    assert (t.view(2, 4) == t.view(2, 4)[:, :1]).all(), "frames of one video must share t"
    for f in range(1, 4):  # tolerance as the shared test: nu recovered through sqrt(1 - alpha_hat) in float32
        torch.testing.assert_close(nu[:, f, :, :, : 8 - f], nu[:, 0, :, :, f:], atol=2e-3, rtol=0)
        assert (nu[:, f, :, :, 8 - f:] - nu[:, 0, :, :, -1:]).abs().amax() > 0.1, "disoccluded: fresh noise"


def test_v_prediction_trains_on_v_and_samples_with_it(monkeypatch):
    from diffusers import DDPMScheduler

    model = make_model(noise_scheduler=DDPMScheduler(prediction_type="v_prediction", clip_sample=True))
    batch = fake_batch(num_videos=2, num_frames=3)
    inputs = UNetInputs(model.unet)
    captured = {}
    real_mse = torch.nn.functional.mse_loss

    def capture(prediction, target):
        captured["target"] = target
        return real_mse(prediction, target)

    monkeypatch.setattr("s2dm_lightning.models.diffusion_module.F.mse_loss", capture)
    model.training_step(batch, 0)
    sample, t, _ = inputs.calls[0]
    x0 = batch["frames"].flatten(0, 1)
    nu = recovered_noise(model, sample[:, :3], t, x0)
    a = model.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(captured["target"], a.sqrt() * nu - (1 - a).sqrt() * x0, atol=1e-4, rtol=0)
    videos = model.sample_videos(batch, torch.Generator().manual_seed(0))
    assert videos.shape == batch["frames"].shape and torch.isfinite(videos).all()
    with pytest.raises(ValueError, match="prediction_type"):
        make_model(noise_scheduler=DDPMScheduler(prediction_type="velocity"))


def test_frames_per_step_keeps_noise_shared_on_the_frames_kept():
    model = make_model(frames_per_step=2)
    batch = fake_batch(num_videos=2, num_frames=4)
    inputs = UNetInputs(model.unet)
    model.training_step(batch, 0)
    sample, t, _ = inputs.calls[0]
    assert sample.shape[0] == 4  # 2 videos x 2 frames
    t = t.view(2, 2)
    assert (t == t[:, :1]).all()


def test_condition_dropout_rates_and_per_video_consistency():
    torch.manual_seed(0)
    model = make_model(fusion="tokens", text_dropout=0.3, flow_dropout=0.6)
    inputs = UNetInputs(model.unet)
    batch = fake_batch(num_videos=32, num_frames=2)
    null_text, _ = model.text_condition([""])
    null_flow = model.flow_conditioner.null_tokens.detach()
    with torch.no_grad():
        for _ in range(25):
            model.diffusion_loss(batch, model.noise_generator)
    text_dropped, flow_dropped = [], []
    for _, _, hidden in inputs.calls:
        hidden = hidden.view(32, 2, *hidden.shape[1:])
        text = hidden[..., :-1, :]
        flow = hidden[..., -1:, :]
        t_drop = (text == null_text).flatten(2).all(-1)
        f_drop = (flow == null_flow).flatten(2).all(-1)
        assert (t_drop[:, 0] == t_drop[:, 1]).all() and (f_drop[:, 0] == f_drop[:, 1]).all(), "dropout is per video"
        text_dropped += t_drop[:, 0].tolist()
        flow_dropped += f_drop[:, 0].tolist()
    n = len(text_dropped)
    assert n == 800
    assert abs(sum(text_dropped) / n - 0.3) < 4 * (0.3 * 0.7 / n) ** 0.5
    assert abs(sum(flow_dropped) / n - 0.6) < 4 * (0.6 * 0.4 / n) ** 0.5
    both = sum(a and b for a, b in zip(text_dropped, flow_dropped, strict=True)) / n
    assert abs(both - 0.18) < 4 * (0.18 * 0.82 / n) ** 0.5, "text and flow are dropped independently"


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_shared_z_T_and_identical_flows_give_identical_frames(eta):
    model = make_model(eta=eta, num_inference_steps=4).eval()
    batch = fake_batch(num_videos=2, num_frames=3)
    batch["flow"] = identity_condition(8, 8).expand(2, 3, 3, 8, 8).clone()
    video = model.sample_videos(batch, torch.Generator().manual_seed(0))
    assert video.shape == (2, 3, 3, 8, 8)
    for f in range(1, 3):  # other rows of the network's batch: equal up to its rounding
        assert_equal_to_batch_rounding(video[:, f], video[:, 0], unlike=video.flip(0)[:, 0])  # videos: own z_T
    independent = model.sample_videos(batch, torch.Generator().manual_seed(0), noise_sharing="independent")
    assert (independent[:, 1] - independent[:, 0]).abs().amax() > 1e-2
    # warped noise along identity flows is shared noise (same draws, same generator state): same batch make-up
    warped = model.sample_videos(batch, torch.Generator().manual_seed(0), noise_sharing="warped")
    assert torch.equal(warped, video)


def test_sampling_makes_one_batched_network_call_per_step():
    model = make_model(num_inference_steps=5, guidance_mode="separate").eval()
    inputs = UNetInputs(model.unet)
    batch = fake_batch(num_videos=2, num_frames=4)
    model.sample_videos(batch, torch.Generator().manual_seed(0))
    assert len(inputs.calls) == 5
    assert all(sample.shape[0] == 3 * 2 * 4 for sample, _, _ in inputs.calls)  # 3 branches x 2 videos x 4 frames


def test_same_seed_gives_same_video_and_flow_changes_frames():
    model = make_model(num_inference_steps=3).eval()
    batch = fake_batch(num_videos=1, num_frames=3)
    a = model.sample_videos(batch, torch.Generator().manual_seed(5))
    b = model.sample_videos(batch, torch.Generator().manual_seed(5))
    assert torch.equal(a, b), "the same batch and seed: the same computation, bit for bit"
    assert (a[:, 1] - a[:, 0]).abs().amax() > 1e-4, "different flows must give different frames"


def test_wrong_flow_shape_names_the_setting():
    model = make_model()
    batch = fake_batch(flow_size=4)
    with pytest.raises(ValueError, match="flow_size"):
        model.training_step(batch, 0)


def test_training_reduces_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = make_model(text_dropout=0.0, flow_dropout=0.0)
    batch = fake_batch(num_videos=2, num_frames=2)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    fixed = lambda: torch.Generator().manual_seed(0)  # noqa: E731 - same nu and t every step
    first = model.diffusion_loss(batch, fixed()).item()
    for _ in range(30):
        loss = model.diffusion_loss(batch, fixed())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.diffusion_loss(batch, fixed()).item() < 0.5 * first


def test_evaluation_seeds_follow_the_video_not_the_batch():
    model = make_model(num_inference_steps=2).eval()
    batch = fake_batch(num_videos=2, num_frames=3)
    batch["sample_index"] = torch.tensor([3, 4])
    together = model.predict_step(batch, batch_idx=0)["videos"]
    alone = {k: v[1:] for k, v in batch.items()}
    by_itself = model.predict_step(alone, batch_idx=7)["videos"]
    # the same seeds in a batch of 2 and of 1: the same video up to float32 rounding (not bit for bit)
    model.evaluation_run = 1  # --n_runs: a new run draws new noise for the same video
    assert_equal_to_batch_rounding(together[1:], by_itself, unlike=model.predict_step(alone, batch_idx=7)["videos"])
