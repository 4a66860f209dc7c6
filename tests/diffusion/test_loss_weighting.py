"""s2dm_lightning/diffusion/loss_weighting.py: Min-SNR-gamma weights against the formula, computed independently."""

import pytest
import torch
from diffusers import DDPMScheduler

from s2dm_lightning.diffusion.loss_weighting import min_snr_weights

TIMESTEPS = [0, 10, 100, 400, 999]


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_weights_match_the_formula_at_chosen_timesteps(prediction_type):
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)  # SD 1.5's
    gamma = 5.0
    weights = min_snr_weights(scheduler.alphas_cumprod, torch.tensor(TIMESTEPS), prediction_type, gamma)
    for t, weight in zip(TIMESTEPS, weights.tolist(), strict=True):
        a = float(scheduler.alphas_cumprod[t])
        snr = a / (1 - a)
        expected = {"epsilon": min(snr, gamma) / snr, "v_prediction": min(snr, gamma) / (snr + 1),
                    "sample": min(snr, gamma)}[prediction_type]
        assert weight == pytest.approx(expected, rel=1e-5)
    if prediction_type == "epsilon":  # large t (SNR < gamma): weight 1; t = 0 (SNR ~ 1e3): gamma / SNR
        assert weights[-1].item() == pytest.approx(1.0) and weights[0].item() < 0.01


def test_zero_terminal_snr_gives_the_eps_limit_one():
    alphas = torch.tensor([0.9, 0.5, 0.0])
    assert min_snr_weights(alphas, torch.tensor([2]), "epsilon", 5.0).item() == 1.0


def test_the_module_loss_is_the_weighted_per_frame_mse(monkeypatch):
    from s2dm_lightning.models import S2DM
    from tests.conftest import HashTextEncoder, fake_batch, tiny_unet

    model = S2DM(tiny_unet(in_channels=6), HashTextEncoder(), flow_fusion="both", flow_size=8, snr_gamma=5.0)
    prediction, target = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([1, 50, 300, 900])
    weights = min_snr_weights(model.noise_scheduler.alphas_cumprod, t, "epsilon", 5.0)
    expected = sum(weights[i] * (prediction[i] - target[i]).pow(2).mean() for i in range(4)) / 4
    torch.testing.assert_close(model.prediction_loss(prediction, target, t), expected, rtol=1e-5, atol=0)
    assert torch.isfinite(model.training_step(fake_batch(num_videos=2, num_frames=3), 0))
