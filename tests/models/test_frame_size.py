"""s2dm_lightning/models/frame_size.py: frame sizes against the UNet's and the VAE's halvings."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from s2dm_lightning.models.frame_size import (
    check_datamodule_fits,
    check_frame_size,
    unet_size_factor,
    vae_size_factor,
)
from tests.conftest import tiny_unet


def _vae(blocks: int) -> SimpleNamespace:
    return SimpleNamespace(config=SimpleNamespace(block_out_channels=[8] * blocks))


def test_factors():
    unet = tiny_unet()  # 2 down blocks: one halving
    assert unet_size_factor(unet) == 2 and vae_size_factor(None) == 1 and vae_size_factor(_vae(4)) == 8


def test_frame_size_pixels_and_latents():
    unet = tiny_unet()
    check_frame_size("k", 8, unet)
    with pytest.raises(ValueError, match=r"k=9 must be a multiple of 2 \(the UNet's 2 down blocks halve it 1 times\)"):
        check_frame_size("k", 9, unet)
    check_frame_size("k", 128, unet, _vae(4))
    with pytest.raises(ValueError, match=r"k=120 must be a multiple of 16 \(the VAE divides frames by 8"):
        check_frame_size("k", 120, unet, _vae(4))


def test_datamodule_resolution_and_flow_size():
    unet = tiny_unet()
    check_datamodule_fits(SimpleNamespace(resolution=8, flow_settings=SimpleNamespace(flow_size=8)), unet, None, 8)
    with pytest.raises(ValueError, match="data.init_args.resolution=7"):
        check_datamodule_fits(SimpleNamespace(resolution=7), unet, None, 8)
    with pytest.raises(ValueError, match="data.init_args.flow_size=16 must equal model.init_args.flow_size=8"):
        check_datamodule_fits(SimpleNamespace(resolution=8, flow_settings=SimpleNamespace(flow_size=16)), unet, None, 8)
