"""Loading a local SD-1.5-shaped folder: components, flow tokens at the text width, conv_in growth, errors."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from s2dm_lightning.flow_format import grid_to_displacement
from s2dm_lightning.models import S2DM, CLIPTextEncoder
from s2dm_lightning.models.pretrained_folder import SD_SUBFOLDERS, PretrainedFolderError
from tests.conftest import fake_batch, tiny_unet
from tests.tiny_sd import SD_SCALING_FACTOR, SD_TEXT_WIDTH, tiny_sd_vae


def captured_unet_calls(unet):
    calls = []

    def hook(module, args, kwargs):
        calls.append({"sample": args[0].detach().clone(), "hidden": kwargs["encoder_hidden_states"].detach().clone(),
                      "mask": kwargs.get("encoder_attention_mask")})

    unet.register_forward_pre_hook(hook, with_kwargs=True)
    return calls


def test_every_component_comes_from_the_folder(tiny_sd):
    model = S2DM(pretrained=str(tiny_sd), flow_fusion="tokens", flow_size=16, sample_size=16)
    reference = UNet2DConditionModel.from_pretrained(tiny_sd / "unet")
    assert model.unet.config.in_channels == 4 and model.frame_shape() == (4, 16, 16)
    for name, value in reference.state_dict().items():  # pretrained weights (cross-attention too) unchanged
        torch.testing.assert_close(model.unet.state_dict()[name], value, rtol=0, atol=0)
    assert isinstance(model.text_encoder, CLIPTextEncoder) and model.text_encoder.width == SD_TEXT_WIDTH
    assert not any(p.requires_grad for p in model.text_encoder.model.parameters())
    assert isinstance(model.vae, AutoencoderKL) and model.vae.config.scaling_factor == SD_SCALING_FACTOR
    assert not any(p.requires_grad for p in model.vae.parameters())
    schedule = model.noise_scheduler.config  # SD 1.5's scaled-linear betas, no clipping in latent space
    assert (schedule.beta_schedule, schedule.beta_start, schedule.beta_end, schedule.clip_sample) == (
        "scaled_linear", 0.00085, 0.012, False)
    hidden, mask = model.text_encoder.encode(["Person 020 is making fear expression"])
    assert hidden.shape == (1, 77, SD_TEXT_WIDTH) and mask.all(), "77 tokens, no attention mask, as SD"


def test_at_128_px_the_flow_is_one_768_d_token_without_projection(tiny_sd):
    """16 x 16 x 3 = 768 = CLIP's width: the flattened map itself is the 78th cross-attention token."""
    model = S2DM(pretrained=str(tiny_sd), flow_fusion="tokens", flow_size=16, sample_size=16,
                 text_dropout=0.0, flow_dropout=0.0)
    assert isinstance(model.flow_conditioner.project, torch.nn.Identity) and model.flow_conditioner.num_tokens == 1
    calls = captured_unet_calls(model.unet)
    batch = fake_batch(num_videos=1, num_frames=2, size=128, flow_size=16)
    with torch.no_grad():
        model.diffusion_loss(batch, torch.Generator().manual_seed(0))
    hidden = calls[0]["hidden"]
    assert hidden.shape == (2, 78, SD_TEXT_WIDTH) and calls[0]["mask"] is None
    expected = grid_to_displacement(batch["flow"][0]).flatten(1)  # (frames, 768), channel-major like "c p q"
    torch.testing.assert_close(hidden[:, -1], expected)
    assert calls[0]["sample"].shape == (2, 4, 16, 16), "128-px frames become 16 x 16 x 4 latents"


def test_other_flow_sizes_get_a_learned_projection(tiny_sd):
    model = S2DM(pretrained=str(tiny_sd), flow_fusion="tokens", flow_size=8)
    assert isinstance(model.flow_conditioner.project, torch.nn.Linear)
    assert model.flow_conditioner.project.weight.shape == (SD_TEXT_WIDTH, 8 * 8 * 3)


def test_concat_fusion_grows_conv_in_with_zero_flow_channels(tiny_sd):
    model = S2DM(pretrained=str(tiny_sd), flow_fusion="both", flow_size=4, sample_size=4)
    reference = UNet2DConditionModel.from_pretrained(tiny_sd / "unet")
    weight = model.unet.conv_in.weight
    assert weight.shape[1] == 7 and model.unet.config.in_channels == 7
    torch.testing.assert_close(weight[:, :4], reference.conv_in.weight, rtol=0, atol=0)
    assert (weight[:, 4:] == 0).all()
    # So the grown UNet computes what the pretrained one did, whatever the flow channels hold.
    x, hidden = torch.randn(2, 4, 4, 4), torch.randn(2, 5, SD_TEXT_WIDTH)
    with torch.no_grad():
        grown = model.unet(torch.cat([x, torch.randn(2, 3, 4, 4)], 1), 10, encoder_hidden_states=hidden).sample
        torch.testing.assert_close(grown, reference(x, 10, encoder_hidden_states=hidden).sample)


def test_explicit_components_win_and_vae_path_replaces_the_folders_vae(tiny_sd, tmp_path, text_encoder):
    torch.manual_seed(1)
    tiny_sd_vae().save_pretrained(tmp_path / "finetuned")
    unet = tiny_unet(sample_size=4, in_channels=4, out_channels=4, cross_dim=text_encoder.width)
    model = S2DM(pretrained=str(tiny_sd), unet=unet, text_encoder=text_encoder, vae_path=str(tmp_path / "finetuned"),
                 flow_fusion="tokens", flow_size=4, gradient_checkpointing=True)
    assert model.unet is unet and model.text_encoder is text_encoder
    model.setup("fit")
    assert model.unet.is_gradient_checkpointing
    finetuned = AutoencoderKL.from_pretrained(tmp_path / "finetuned")
    torch.testing.assert_close(model.vae.encoder.conv_in.weight, finetuned.encoder.conv_in.weight)


@pytest.mark.parametrize("missing", SD_SUBFOLDERS)
def test_an_incomplete_folder_names_the_missing_subfolder(tiny_sd, tmp_path, missing):
    partial = tmp_path / "sd-partial"
    partial.mkdir()
    for name in SD_SUBFOLDERS:
        if name != missing:
            (partial / name).symlink_to(tiny_sd / name, target_is_directory=True)
    with pytest.raises(PretrainedFolderError, match=rf"model\.pretrained=.*has no '{missing}/' sub-folder"):
        S2DM(pretrained=str(partial), flow_fusion="tokens", flow_size=4)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(PretrainedFolderError, match="model.pretrained=.*is not a folder"):
        S2DM(pretrained=str(tmp_path / "stable-diffusion-v1-5"), flow_fusion="tokens", flow_size=4)


def test_frames_are_encoded_scaled_and_decoded(tiny_sd):
    model = S2DM(pretrained=str(tiny_sd), flow_fusion="tokens", flow_size=4, sample_size=4, latent_sample=False,
                 num_inference_steps=2)
    frames = fake_batch(num_videos=1, num_frames=2, size=32, flow_size=4)["frames"]
    with torch.no_grad():
        mean = model.vae.encode(frames[0]).latent_dist.mean
        x0 = model.encode_frames(frames)
        torch.testing.assert_close(x0[0], mean * SD_SCALING_FACTOR)
        torch.testing.assert_close(model.decode_frames(x0)[0], model.vae.decode(mean).sample.clamp(-1, 1))
        videos = model.sample_videos(fake_batch(num_videos=1, num_frames=2, size=32, flow_size=4),
                                     torch.Generator().manual_seed(0))
    assert videos.shape == (1, 2, 3, 32, 32) and videos.abs().max() <= 1
