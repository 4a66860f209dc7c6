"""Min-SNR-gamma loss weighting (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting
Strategy", ICCV 2023): per-timestep weights of the diffusion loss. Pure math, no network.

The paper writes every objective as a weighted x_0 loss, w_t ||x_0 - x_0_hat||^2, and sets
w_t = min(SNR(t), gamma) with SNR(t) = alpha_hat_t / (1 - alpha_hat_t) (gamma = 5 in the paper).
The network's own loss is a fixed multiple of that x_0 loss, so the weight on it is the paper's
weight divided by that multiple:

* ``sample`` (x_0):      ||x_0 - x_0_hat||^2,                            weight min(SNR, gamma);
* ``epsilon``:           ||eps - eps_hat||^2 = SNR ||x_0 - x_0_hat||^2,      weight min(SNR, gamma) / SNR;
* ``v_prediction``:      ||v - v_hat||^2 = (SNR + 1) ||x_0 - x_0_hat||^2, weight min(SNR, gamma) / (SNR + 1).

(eps: x_0 = (x_t - sqrt(1 - a) eps) / sqrt(a), so an eps error e is an x_0 error e / sqrt(SNR);
v = sqrt(a) eps - sqrt(1 - a) x_0 gives an x_0 error of e * sqrt(1 - a) = e / sqrt(SNR + 1).)
At SNR = 0 (a zero-terminal-SNR schedule's last step) the eps weight is taken as its limit 1.
"""

from __future__ import annotations

import torch

from s2dm_lightning.diffusion.sector_noise import check_prediction_type


def signal_to_noise_ratio(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """SNR(t) = alpha_hat_t / (1 - alpha_hat_t) at ``timesteps`` (any shape), in float64 then float32."""
    alpha_hat = alphas_cumprod.to(device=timesteps.device, dtype=torch.float64)[timesteps]
    return (alpha_hat / (1.0 - alpha_hat)).float()


def min_snr_weights(
    alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, prediction_type: str, gamma: float
) -> torch.Tensor:
    """The Min-SNR-gamma weight of the loss of each timestep (same shape as ``timesteps``; module doc)."""
    check_prediction_type(prediction_type)
    snr = signal_to_noise_ratio(alphas_cumprod, timesteps)
    clipped = torch.clamp(snr, max=gamma)  # min(SNR, gamma)
    if prediction_type == "sample":
        return clipped
    if prediction_type == "v_prediction":
        return clipped / (snr + 1.0)
    return torch.where(snr > 0, clipped / snr.clamp(min=torch.finfo(snr.dtype).tiny), torch.ones_like(snr))


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mean_n weights[n] * mean(|prediction[n] - target[n]|^2) for (N, ...) tensors and (N,) weights."""
    per_sample = (prediction.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return (weights.to(per_sample) * per_sample).mean()
