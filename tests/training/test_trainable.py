"""s2dm_lightning/training: training a subset (patterns) and LoRA on the tiny SD, checkpoints of what is trained."""

from __future__ import annotations

import pytest
import torch

from s2dm_lightning.models import S2DM
from s2dm_lightning.models.export import save_pretrained
from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline
from s2dm_lightning.training.trainable import parameter_summary
from tests.conftest import fake_batch


def _model(tiny_sd, **kwargs):
    return S2DM(pretrained=str(tiny_sd), flow_fusion="both", flow_size=4, sample_size=4, num_inference_steps=2,
                learning_rate=1e-2, **kwargs)


def _train(model, steps=3):
    optimizer = model.configure_optimizers()["optimizer"]
    batch = fake_batch(num_videos=2, num_frames=3, size=32, flow_size=4)
    for step in range(steps):
        optimizer.zero_grad()
        model.diffusion_loss(batch, torch.Generator().manual_seed(step)).backward()
        optimizer.step()


def test_patterns_freeze_the_rest_and_the_count_is_right(tiny_sd):
    model = _model(tiny_sd, trainable_parameters=["unet.*attn*"])
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    attn = {n for n, _ in model.unet.named_parameters() if "attn" in n}
    added = {n for n, _ in model.named_parameters() if n.startswith(("flow_conditioner.", "unet.conv_in."))}
    assert trained == {f"unet.{n}" for n in attn} | added  # conv_in grown by the flow channels: trained
    count = sum(p.numel() for n, p in model.named_parameters() if n in trained)
    total = sum(p.numel() for p in model.parameters())
    assert parameter_summary(model).startswith(f"training {count / 1e6:.1f} M of {total / 1e6:.1f} M parameters")
    assert 0 < count < total


def test_a_pattern_matching_nothing_is_named(tiny_sd):
    with pytest.raises(ValueError, match=r"trainable_parameters: pattern\(s\) \['unet\.nothing\*'\]"):
        _model(tiny_sd, trainable_parameters=["unet.nothing*"])


def test_lora_trains_the_adapter_only_and_exports_merged_or_as_adapter(tiny_sd, tmp_path):
    torch.manual_seed(0)
    model = _model(tiny_sd, lora_rank=4, lora_alpha=8)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train(model)
    after = dict(model.named_parameters())
    lora = {n for n in after if ".lora_" in n}
    assert lora and all(after[n].requires_grad for n in lora)
    assert any(not torch.equal(before[n], after[n]) for n in lora if ".lora_B." in n), "the adapter trained"
    frozen = [n for n in after if n.startswith("unet.") and ".lora_" not in n and not n.startswith("unet.conv_in.")]
    assert frozen and all(torch.equal(before[n], after[n]) for n in frozen), "the UNet's own weights stay"
    assert not torch.equal(before["unet.conv_in.weight"], after["unet.conv_in.weight"])  # S2DM's channels train

    # a checkpoint holds the trained parameters only; loading it back fills the base from `pretrained`
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(checkpoint["state_dict"]) == trained
    assert sum(v.numel() for v in checkpoint["state_dict"].values()) < sum(p.numel() for p in model.parameters()) / 2
    fresh = _model(tiny_sd, lora_rank=4, lora_alpha=8)
    fresh.load_state_dict(checkpoint["state_dict"])
    for name, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name

    batch = fake_batch(num_videos=1, num_frames=3, size=32, flow_size=4)
    model.eval()
    with torch.no_grad():
        reference = model.sample_videos(batch, torch.Generator().manual_seed(0))
        outputs = {}
        for form in ("merged", "adapter"):
            save_pretrained(model, tmp_path / form, lora=form)
            pipeline = S2DMPipeline.from_pretrained(tmp_path / form)
            assert (tmp_path / form / "unet_lora").is_dir() == (form == "adapter")
            outputs[form] = pipeline.to_s2dm().sample_videos(batch, torch.Generator().manual_seed(0))
    # merged weights: W + B A (alpha / r) in one matrix, rounded differently from the two-path sum (float32,
    # 2 DDIM steps, frames in [-1, 1]); the adapter form computes exactly what the model does
    torch.testing.assert_close(outputs["merged"], reference, rtol=0, atol=1e-4)
    torch.testing.assert_close(outputs["adapter"], reference, rtol=0, atol=1e-5)
