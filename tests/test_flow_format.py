"""flow_format.resize_condition: the one resize of conditions and flow maps.

Each mode must give, bit for bit, what its callers computed before it was unified (seeded outputs
of trained models depend on it); the references below are those former implementations, verbatim.
Same inputs, same batch, same kernels: bit equality is the right check here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from s2dm_lightning.flow_format import (
    FLOW_CHANNELS,
    grid_to_displacement,
    identity_condition,
    identity_grid,
    resize_condition,
    warp,
    warp_reference,
)


def former_flow_generator_resize(condition: torch.Tensor, size: int) -> torch.Tensor:
    """models/flow_generator.py before: area when shrinking, identity added back."""
    if condition.shape[-2:] == (size, size):
        return condition
    lead = condition.shape[:-3]
    maps = grid_to_displacement(condition).reshape(-1, *condition.shape[-3:]).float()
    if size < condition.shape[-1]:
        maps = F.interpolate(maps, size=(size, size), mode="area")
    else:
        maps = F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=True)
    maps[:, :2] += identity_grid(size, size, device=maps.device)
    return maps.reshape(*lead, FLOW_CHANNELS, size, size).to(condition.dtype)


def former_metrics_resize(condition: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """metrics/functional_consistency.py before: bilinear on the raw grid, float32."""
    if tuple(condition.shape[-2:]) == tuple(size):
        return condition.float()
    return F.interpolate(condition.float(), size=tuple(size), mode="bilinear", align_corners=True)


def former_channel_resize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """models/flow_conditioning.py (inline) and warp before: bilinear when the size differs."""
    if maps.shape[-2:] != size:
        maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=True)
    return maps


def random_conditions(lead: tuple[int, ...], size: int, dtype: torch.dtype = torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    cond = identity_condition(size, size).repeat(*lead, 1, 1, 1)
    cond[..., :2, :, :] += 0.3 * torch.randn(*lead, 2, size, size, generator=g)
    cond[..., 2, :, :] = torch.rand(*lead, size, size, generator=g)
    return cond.to(dtype)


@pytest.mark.parametrize("source,target", [(16, 8), (12, 8), (32, 16), (8, 16), (8, 13), (16, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_keep_identity_equals_the_flow_generator_resize(source, target, dtype):
    cond = random_conditions((2, 3), source, dtype, seed=source * 100 + target)
    new = resize_condition(cond, target, mode="keep_identity")
    old = former_flow_generator_resize(cond, target)
    assert new.dtype == old.dtype == dtype and torch.equal(new, old)
    assert torch.equal(resize_condition(cond[0], (target, target), mode="keep_identity"),
                       former_flow_generator_resize(cond[0], target))


@pytest.mark.parametrize("source,target", [(16, (8, 8)), (8, (16, 16)), (16, (32, 24)), (16, (16, 16))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bilinear_equals_the_metric_resize(source, target, dtype):
    cond = random_conditions((5,), source, dtype, seed=source)
    new = resize_condition(cond.float(), target, mode="bilinear")  # the metric's call: float32 first
    assert torch.equal(new, former_metrics_resize(cond, target))


@pytest.mark.parametrize("source,target", [(8, (16, 16)), (16, (8, 8)), (16, (16, 16))])
def test_bilinear_equals_the_flow_channels_and_warp_resize(source, target):
    maps = grid_to_displacement(random_conditions((4,), source, seed=7)) * 3.7
    assert torch.equal(resize_condition(maps, target, mode="bilinear"), former_channel_resize(maps, target))
    grid = random_conditions((4,), source, seed=8)[:, :2]
    assert torch.equal(resize_condition(grid, target, mode="bilinear"), former_channel_resize(grid, target))
    images = torch.rand(4, 3, *target)
    expected = F.grid_sample(images, former_channel_resize(grid, target).permute(0, 2, 3, 1), mode="bilinear",
                             padding_mode="border", align_corners=True)
    assert torch.equal(warp(images, torch.cat([grid, torch.ones(4, 1, source, source)], 1)), expected)


def test_identity_stays_exact_and_shifts_keep_their_size():
    identity = identity_condition(16, 16)
    assert torch.equal(resize_condition(identity, 8, mode="keep_identity"), identity_condition(8, 8))
    torch.testing.assert_close(resize_condition(identity_condition(8, 8), 16, mode="keep_identity"), identity,
                               atol=1e-6, rtol=0)
    # a uniform shift stays the same shift (grid units do not depend on the resolution)
    shifted = identity.clone()
    shifted[0] += 0.25
    torch.testing.assert_close(resize_condition(shifted, 8, mode="keep_identity")[0] - identity_condition(8, 8)[0],
                               torch.full((8, 8), 0.25))


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="'nearest'"):
        resize_condition(identity_condition(8, 8), 4, mode="nearest")


def test_warp_reference_is_warp_of_the_reference_by_each_frame():
    reference = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    conditions = torch.rand(2, 4, 3, 5, 5, generator=torch.Generator().manual_seed(1)) * 2 - 1
    warped = warp_reference(reference, conditions)
    assert warped.shape == (2, 4, 3, 8, 8)
    for b in range(2):
        for f in range(4):
            torch.testing.assert_close(warped[b, f], warp(reference[b : b + 1], conditions[b, f : f + 1])[0])
