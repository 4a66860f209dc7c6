"""Shared test fixtures: tiny networks and a tiny text encoder, CPU only."""

from __future__ import annotations

import hashlib

import pytest
import torch
from diffusers import UNet2DConditionModel

from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.models.text_encoder import CachedTextEncoder
from tests.latent_fixtures import synthetic_root, tiny_sd  # noqa: F401 (fixtures for every test folder)

# One thread: tests check behaviour, not speed, and several torch processes (DDP tests, a
# busy machine) with 2 threads each on 2 cores slow down by orders of magnitude.
torch.set_num_threads(1)


class HashTextEncoder(CachedTextEncoder):
    """A deterministic stand-in for a text encoder: one random vector per word."""

    def __init__(self, width: int = 32, max_length: int = 8) -> None:
        super().__init__(max_length=max_length, use_attention_mask=True)
        self._width = width
        self.calls = 0

    @property
    def width(self) -> int:
        return self._width

    def _encode_uncached(self, prompts):
        self.calls += 1
        hidden = torch.zeros(len(prompts), self.max_length, self._width)
        mask = torch.zeros(len(prompts), self.max_length, dtype=torch.bool)
        for i, prompt in enumerate(prompts):
            words = ["<s>"] + prompt.split()[: self.max_length - 1]
            for j, word in enumerate(words):
                seed = int(hashlib.sha1(word.encode()).hexdigest()[:8], 16)
                hidden[i, j] = torch.randn(self._width, generator=torch.Generator().manual_seed(seed))
                mask[i, j] = True
        return hidden, mask


def tiny_unet(sample_size: int = 8, in_channels: int = 6, out_channels: int = 3, cross_dim: int = 32):
    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=out_channels,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=cross_dim,
        attention_head_dim=4,
        norm_num_groups=4,
    )


def fake_batch(num_videos: int = 2, num_frames: int = 4, size: int = 8, flow_size: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    flow = identity_condition(flow_size, flow_size).expand(num_videos, num_frames, 3, flow_size, flow_size).clone()
    flow[:, 1:, :2] += 0.2 * torch.rand(num_videos, num_frames - 1, 2, 1, 1, generator=g)
    return {
        "frames": torch.rand(num_videos, num_frames, 3, size, size, generator=g) * 2 - 1,
        "flow": flow,
        "caption": [f"a red square moves {d}" for d in ["left", "right", "up", "down"] * num_videos][:num_videos],
        "video_id": [f"v{i}" for i in range(num_videos)],
    }


@pytest.fixture
def text_encoder():
    return HashTextEncoder()


class UNetInputs:
    """Captures (sample, timestep, encoder_hidden_states) of every UNet call."""

    def __init__(self, unet):
        self.calls = []
        unet.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        self.calls.append((args[0].detach().clone(), args[1].detach().clone(), kwargs["encoder_hidden_states"].detach()))


# Float results of batches of different make-up. Bit equality holds only for the same computation: the
# same batch make-up, seeds, machine and library build (sampling one batch twice). The same video sampled
# in a batch of another size, on another DDP rank or with another CPU instruction set goes through
# GEMM/conv kernels that block (and so sum) in another order: MKL's AVX-512 kernels choose by matrix
# size. Each float32 layer then moves by a few eps (1.2e-7) of its values, and the sampler carries that
# through its steps, times the guidance scale. The tests' samplers are 2-4 DDIM steps of tiny networks;
# on their [-1, 1] pixels the float32-vs-float64 gap of the same computation (the rounding scale) is
# 3.7e-5, and the measured batch-make-up differences are at most 1.4e-5 (Sapphire Rapids: AVX-512 + AMX)
# and 2.0e-5 (an AVX-512 CPU without AMX). 1e-4 is ~3x the rounding scale and 1e4x below the ~1 that
# another seed changes (checked by `unlike`). Not for long samplers of untrained networks: over 20 steps
# at guidance 7.5 the random test UNet amplifies the same rounding to 3e-2 (a briefly trained one: 4.5e-6).
BATCH_ROUNDING_ATOL = 1e-4


def assert_equal_to_batch_rounding(actual: torch.Tensor, expected: torch.Tensor,
                                   unlike: torch.Tensor | None = None) -> None:
    """``actual == expected`` up to the float32 rounding of a batch of another make-up (see above).

    ``unlike`` is a result that must differ from ``expected`` (another seed, run or z_T): it must be over
    100 tolerances away, so that the tolerance cannot hide a wrong seed.
    """
    torch.testing.assert_close(actual, expected, atol=BATCH_ROUNDING_ATOL, rtol=0)
    if unlike is not None:
        gap = (unlike - expected).abs().amax().item()
        assert gap > 100 * BATCH_ROUNDING_ATOL, f"'unlike' is only {gap:.2g} away: the comparison proves nothing"
