"""Tiny stage-one and stage-two models for the pipeline tests (CPU, a few thousand parameters)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import UNet3DConditionModel

from s2dm_lightning.models import S2DM, FlowGenerator
from tests.conftest import HashTextEncoder, tiny_unet

SIZE = 8  # frames, S2DM flows and generated flows are all 8 x 8 in these tests


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine two threads make small 3D convolutions crawl."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_unet3d(sample_size: int = SIZE, in_channels: int = 6, cross_dim: int = 32) -> UNet3DConditionModel:
    torch.manual_seed(0)
    return UNet3DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock3D", "CrossAttnDownBlock3D"),
        up_block_types=("CrossAttnUpBlock3D", "UpBlock3D"),
        layers_per_block=1,
        cross_attention_dim=cross_dim,
        attention_head_dim=4,
        norm_num_groups=4,
    )


def tiny_flow_generator(sample_size: int = SIZE, **kwargs) -> FlowGenerator:
    kwargs = {"num_inference_steps": 2, "guidance_scale": 2.0, **kwargs}
    return FlowGenerator(tiny_unet3d(sample_size), HashTextEncoder(), **kwargs)


def tiny_s2dm(**kwargs) -> S2DM:
    kwargs = {"num_inference_steps": 2, "guidance_scale": 2.0, **kwargs}
    return S2DM(tiny_unet(sample_size=SIZE, in_channels=6), HashTextEncoder(), flow_fusion="both", flow_size=SIZE,
                **kwargs)


TEXT_ENCODER_YAML = """
    text_encoder:
      class_path: tests.conftest.HashTextEncoder
      init_args: {width: 32, max_length: 8}"""

S2DM_YAML = f"""model:
  class_path: s2dm_lightning.models.S2DM
  init_args:
    unet:
      class_path: diffusers.UNet2DConditionModel
      init_args:
        sample_size: {SIZE}
        in_channels: 6
        out_channels: 3
        block_out_channels: [8, 16]
        down_block_types: [DownBlock2D, CrossAttnDownBlock2D]
        up_block_types: [CrossAttnUpBlock2D, UpBlock2D]
        layers_per_block: 1
        cross_attention_dim: 32
        attention_head_dim: 4
        norm_num_groups: 4{TEXT_ENCODER_YAML}
    flow_fusion: both
    flow_size: {SIZE}
    guidance_scale: 2.0
    num_inference_steps: 2
"""

FLOW_YAML = f"""model:
  class_path: s2dm_lightning.models.FlowGenerator
  init_args:
    unet:
      class_path: diffusers.UNet3DConditionModel
      init_args:
        sample_size: {SIZE}
        in_channels: 6
        out_channels: 3
        block_out_channels: [8, 16]
        down_block_types: [DownBlock3D, CrossAttnDownBlock3D]
        up_block_types: [CrossAttnUpBlock3D, UpBlock3D]
        layers_per_block: 1
        cross_attention_dim: 32
        attention_head_dim: 4
        norm_num_groups: 4{TEXT_ENCODER_YAML}
    guidance_scale: 2.0
    num_inference_steps: 2
"""


@pytest.fixture
def tiny_checkpoints(tmp_path) -> dict[str, Path]:
    """YAML configs and Lightning-style checkpoints ({"state_dict": ...}) of a tiny S2DM and FlowGenerator."""
    from s2dm_lightning.config import load_module

    paths = {}
    for name, text, cls in (("s2dm", S2DM_YAML, S2DM), ("flow", FLOW_YAML, FlowGenerator)):
        config = tmp_path / f"{name}.yaml"
        config.write_text(text)
        torch.manual_seed(1)
        module = load_module(config, None, cls)
        checkpoint = tmp_path / f"{name}.ckpt"
        torch.save({"state_dict": module.state_dict()}, checkpoint)
        paths[f"{name}_config"], paths[f"{name}_ckpt"] = config, checkpoint
    return paths
