"""s2dm_lightning/models/export.py: save_pretrained / load_pretrained, a self-contained folder that samples exactly like the model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from s2dm_lightning.models import S2DM
from s2dm_lightning.models.export import load_pretrained, save_pretrained
from s2dm_lightning.pipelines.s2dm_pipeline import UnsafePipelineFolderError
from tests.conftest import fake_batch, tiny_unet
from tests.received_files import save_pickled_checkpoint


def _sample(model, seed=0):
    batch = fake_batch(num_videos=1, num_frames=3, size=32, flow_size=4)
    with torch.no_grad():
        return model.sample_videos(batch, torch.Generator().manual_seed(seed))


def test_export_then_reload_gives_identical_samples(tiny_sd, tmp_path):
    model = S2DM(pretrained=str(tiny_sd), flow_fusion="both", flow_size=4, sample_size=4, num_inference_steps=2,
                 guidance_scale=3.0, latent_cache_dir=str(tmp_path / "latents")).eval()
    with torch.no_grad():  # "trained": every weight away from its pretrained value, flow channels included
        for p in [*model.unet.parameters(), *model.flow_conditioner.parameters()]:
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    save_pretrained(model, tmp_path / "export")
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [  # the S2DMPipeline folder
        "flow_conditioner", "model_index.json", "scheduler", "text_encoder", "tokenizer", "unet", "vae"]
    settings = json.loads((tmp_path / "export" / "model_index.json").read_text())
    assert settings["guidance_scale"] == 3.0 and "pretrained" not in settings and "latent_cache_dir" not in settings

    reloaded = load_pretrained(tmp_path / "export")
    assert reloaded.unet.config.in_channels == 7  # the grown conv_in is saved, not grown again
    assert torch.equal(_sample(model), _sample(reloaded))  # same weights, batch and seed: bit for bit
    assert not torch.equal(_sample(model, seed=0), _sample(model, seed=1))
    assert load_pretrained(tmp_path / "export", num_inference_steps=3).hparams.num_inference_steps == 3


def test_an_unsaved_text_encoder_must_be_passed_back(tmp_path, text_encoder):
    model = S2DM(tiny_unet(sample_size=8, in_channels=3), text_encoder, flow_fusion="tokens", flow_size=8,
                 num_inference_steps=2).eval()  # pixel space: no vae/ in the folder
    save_pretrained(model, tmp_path / "export")
    assert not (tmp_path / "export" / "vae").exists()
    with pytest.raises(ValueError, match=r"text_encoder=\.\.\. to s2dm_lightning.models.export.load_pretrained"):
        load_pretrained(tmp_path / "export")
    reloaded = load_pretrained(tmp_path / "export", text_encoder=text_encoder)
    batch = fake_batch(num_videos=1, num_frames=2, size=8, flow_size=8)
    with torch.no_grad():
        a = model.sample_videos(batch, torch.Generator().manual_seed(0))
        b = reloaded.sample_videos(batch, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_export_refuses_to_overwrite_a_foreign_folder(tiny_sd, tmp_path, text_encoder):
    model = S2DM(tiny_unet(sample_size=8, in_channels=3), text_encoder, flow_fusion="tokens", flow_size=8)
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an exported S2DM"):
        save_pretrained(model, tmp_path / "precious")
    save_pretrained(model, tmp_path / "export")
    save_pretrained(model, tmp_path / "export")  # an export is replaced as a whole
    assert not list(tmp_path.glob(".*.tmp"))


def test_from_pretrained_refuses_pickled_weights_and_names_the_file(tmp_path, text_encoder):
    """A received export whose UNet weights are a pickle (.bin) with a payload is refused before anything
    is loaded, naming the file; a damaged safetensors file is named too."""
    model = S2DM(tiny_unet(sample_size=8, in_channels=3), text_encoder, flow_fusion="tokens", flow_size=8)
    save_pretrained(model, tmp_path / "export")
    unet = tmp_path / "export" / "unet"
    state = load_file(unet / "diffusion_pytorch_model.safetensors")
    (unet / "diffusion_pytorch_model.safetensors").unlink()
    marker = tmp_path / "marker"
    save_pickled_checkpoint(unet / "diffusion_pytorch_model.bin", state, marker)
    with pytest.raises(UnsafePipelineFolderError, match="diffusion_pytorch_model.bin"):
        load_pretrained(tmp_path / "export", text_encoder=text_encoder)
    assert not marker.exists(), "the pickled payload ran"
    (unet / "diffusion_pytorch_model.bin").unlink()
    save_file(state, unet / "diffusion_pytorch_model.safetensors")
    conditioner = tmp_path / "export" / "flow_conditioner" / "diffusion_pytorch_model.safetensors"
    conditioner.write_bytes(b"not safetensors")
    with pytest.raises(Exception, match="flow_conditioner"):
        load_pretrained(tmp_path / "export", text_encoder=text_encoder)
