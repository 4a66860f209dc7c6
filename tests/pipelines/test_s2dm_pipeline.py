"""S2DMPipeline: diffusers' save/load, the same videos as the Lightning checkpoint, every output type."""

from __future__ import annotations

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch

from s2dm_lightning.config import load_module
from s2dm_lightning.models import S2DM
from s2dm_lightning.models.export import save_pretrained
from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline, UnsafePipelineFolderError
from tests.conftest import HashTextEncoder, fake_batch
from tests.pipelines.conftest import SIZE, tiny_s2dm
from tests.tiny_sd import make_tiny_sd_folder

# Tolerance where the two sides batch their videos differently: float32 GEMMs (MKL, AVX-512) give
# results that differ by ~1e-6..1e-5 with the batch's make-up; frames are in [0, 1].
BATCH_TOLERANCE = 1e-5


def _generators(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.fixture(scope="module")
def latent_model(tmp_path_factory) -> S2DM:
    """A tiny SD-1.5-shaped latent S2DM (CLIP text encoder, VAE), every weight moved off its initial value."""
    sd = make_tiny_sd_folder(tmp_path_factory.mktemp("sd") / "stable-diffusion-v1-5")
    torch.manual_seed(0)
    model = S2DM(pretrained=str(sd), flow_fusion="both", flow_size=4, sample_size=4, num_inference_steps=2,
                 guidance_scale=3.0).eval()
    with torch.no_grad():
        for p in [*model.unet.parameters(), *model.flow_conditioner.parameters()]:
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model


def test_save_then_load_gives_identical_videos(latent_model, tmp_path):
    pipe = S2DMPipeline.from_s2dm(latent_model)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path / "pipe")
    folder = tmp_path / "pipe"
    assert sorted(p.name for p in folder.iterdir()) == [
        "flow_conditioner", "model_index.json", "scheduler", "text_encoder", "tokenizer", "unet", "vae"]
    weights = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.safetensors"))
    assert weights == ["flow_conditioner/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
                       "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"]
    modes = {p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777 for p in folder.rglob("*")}
    umask = os.umask(0)
    os.umask(umask)
    expected = {name: (0o777 if (folder / name).is_dir() else 0o666) & ~umask for name in modes}
    assert modes == expected, "every file and folder honours the umask (0644/0755 under 022)"
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "S2DMPipeline" and index["guidance_scale"] == 3.0
    assert index["flow_conditioner"] == ["s2dm_lightning.models.flow_conditioning", "FlowConditioner"]

    loaded = S2DMPipeline.from_pretrained(folder)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.unet.config.in_channels == 7  # the grown conv_in is saved as it is
    batch = fake_batch(num_videos=2, num_frames=3, size=32, flow_size=4)
    first = pipe(batch["caption"], batch["flow"], generator=_generators(0, 1), output_type="pt").frames
    again = loaded(batch["caption"], batch["flow"], generator=_generators(0, 1), output_type="pt").frames
    assert first.shape == (2, 3, 3, 32, 32)
    assert torch.equal(first, again), "same weights, same code, same batch: bit-identical"
    other_seed = loaded(batch["caption"], batch["flow"], generator=_generators(5, 1), output_type="pt").frames
    assert not torch.equal(other_seed[0], first[0]) and torch.equal(other_seed[1], first[1])
    assert loaded.to_s2dm().hparams.guidance_scale == 3.0


def test_pipeline_folder_and_lightning_checkpoint_give_the_same_videos(tiny_checkpoints, tmp_path):
    model = load_module(tiny_checkpoints["s2dm_config"], tiny_checkpoints["s2dm_ckpt"], S2DM)
    batch = fake_batch(num_videos=3, num_frames=4, size=SIZE, flow_size=SIZE)
    batch["sample_index"] = torch.tensor([4, 9, 2])
    predicted = (model.predict_step(batch, 0)["videos"] + 1) / 2  # what `predict` writes, in [0, 1]

    save_pretrained(model, tmp_path / "pipe")  # what `export` writes from the checkpoint
    # a custom (test) text encoder is not saved: it is passed back, as for any custom class
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["text_encoder"] == [None, None]
    with pytest.raises(ValueError, match="pass prompt_encoder="):
        S2DMPipeline.from_pretrained(tmp_path / "pipe")(batch["caption"], batch["flow"])
    pipe = S2DMPipeline.from_pretrained(tmp_path / "pipe", prompt_encoder=HashTextEncoder())
    pipe.set_progress_bar_config(disable=True)
    # one video per call (another batch make-up than predict's), seeded by predict's rule sampling_seed + k
    for row, k in enumerate(batch["sample_index"].tolist()):
        video = pipe(batch["caption"][row], batch["flow"][row], generator=torch.Generator().manual_seed(k),
                     output_type="pt").frames[0]
        torch.testing.assert_close(video, predicted[row], atol=BATCH_TOLERANCE, rtol=0)
    assert not torch.allclose(predicted[0], predicted[1], atol=1e-2)


def test_every_output_type(tiny_checkpoints):
    model = load_module(tiny_checkpoints["s2dm_config"], tiny_checkpoints["s2dm_ckpt"], S2DM)
    pipe = S2DMPipeline.from_s2dm(model)
    pipe.set_progress_bar_config(disable=True)
    batch = fake_batch(num_videos=2, num_frames=3, size=SIZE, flow_size=SIZE)

    def run(output_type, **kwargs):
        return pipe(batch["caption"], batch["flow"], generator=_generators(3, 4), output_type=output_type,
                    **kwargs).frames

    videos = run("pt")
    assert videos.shape == (2, 3, 3, SIZE, SIZE) and 0 <= videos.min() and videos.max() <= 1
    as_np = run("np")
    assert isinstance(as_np, np.ndarray) and as_np.shape == (2, 3, SIZE, SIZE, 3)
    np.testing.assert_allclose(as_np, videos.permute(0, 1, 3, 4, 2).numpy(), atol=1e-6)
    as_pil = run("pil")
    assert len(as_pil) == 2 and len(as_pil[0]) == 3 and isinstance(as_pil[0][0], PIL.Image.Image)
    assert as_pil[0][0].size == (SIZE, SIZE)
    np.testing.assert_array_equal(np.asarray(as_pil[1][2]), (as_np[1, 2] * 255).round().astype(np.uint8))
    latents = run("latent")
    torch.testing.assert_close((latents.clamp(-1, 1) + 1) / 2, videos)  # pixel space: x_0 is the frame
    (frames,) = pipe(batch["caption"], batch["flow"], generator=_generators(3, 4), output_type="pt", return_dict=False)
    assert torch.equal(frames, videos)


def test_flows_of_another_size_are_refused_naming_the_flow_size(tiny_checkpoints):
    model = load_module(tiny_checkpoints["s2dm_config"], tiny_checkpoints["s2dm_ckpt"], S2DM)
    pipe = S2DMPipeline.from_s2dm(model)
    with pytest.raises(ValueError, match=r"model.flow_size"):
        pipe("a red square", torch.zeros(4, 3, SIZE * 2, SIZE * 2))
    grid_only = fake_batch(num_videos=1, num_frames=2, size=SIZE, flow_size=SIZE)["flow"][:, :, :2]
    occlusions = torch.zeros(1, 2, SIZE, SIZE)
    assert torch.equal(pipe.check_flows(grid_only, occlusions, 1)[:, :, 2:], occlusions.unsqueeze(2))
    assert torch.equal(pipe.check_flows(grid_only, None, 3)[:, :, 2], torch.ones(3, 2, SIZE, SIZE))


def test_a_received_folder_with_a_pickle_is_refused_naming_the_file(tiny_checkpoints, tmp_path):
    model = load_module(tiny_checkpoints["s2dm_config"], tiny_checkpoints["s2dm_ckpt"], S2DM)
    folder = tmp_path / "received"
    S2DMPipeline.from_s2dm(model).save_pretrained(folder)
    pickle = folder / "unet" / "diffusion_pytorch_model.bin"
    torch.save(model.unet.state_dict(), pickle)
    with pytest.raises(UnsafePipelineFolderError, match=r"unet/diffusion_pytorch_model\.bin"):
        S2DMPipeline.from_pretrained(folder, prompt_encoder=HashTextEncoder())
    loaded = S2DMPipeline.from_pretrained(folder, prompt_encoder=HashTextEncoder(), allow_pickle=True)  # opt-in
    assert torch.equal(loaded.unet.conv_in.weight, model.unet.conv_in.weight)


def test_the_minilm_text_encoder_of_the_synthetic_default_is_saved_and_reloaded(tmp_path):
    from s2dm_lightning.models import MiniLMTextEncoder
    from tests.conftest import tiny_unet

    encoder = MiniLMTextEncoder(max_length=8)
    model = S2DM(tiny_unet(sample_size=SIZE, in_channels=3, cross_dim=encoder.width), encoder, flow_fusion="tokens",
                 flow_size=SIZE, flow_patch_size=4, num_inference_steps=2, guidance_scale=2.0).eval()
    S2DMPipeline.from_s2dm(model).save_pretrained(tmp_path / "pipe")
    pipe = S2DMPipeline.from_pretrained(tmp_path / "pipe")
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.text_encoder).__name__ == "BertModel" and pipe.prompt_encoder.use_attention_mask
    batch = fake_batch(num_videos=2, num_frames=2, size=SIZE, flow_size=SIZE)
    hidden, mask = pipe.prompt_encoder.encode(batch["caption"])
    expected_hidden, expected_mask = encoder.encode(batch["caption"])
    assert torch.equal(hidden, expected_hidden) and torch.equal(mask, expected_mask) and pipe.prompt_encoder.max_length == 8
    video = pipe(batch["caption"], batch["flow"], generator=_generators(0, 1), output_type="pt").frames
    expected = (model.sample_videos(batch, _generators(0, 1)) + 1) / 2
    torch.testing.assert_close(video, expected, atol=BATCH_TOLERANCE, rtol=0)


def test_a_multistep_sampler_is_saved_with_the_pipeline_and_is_a_call_option(tmp_path):
    """The model's sampler becomes the pipeline's scheduler (DPM-Solver++ SDE here) and survives a save;
    ``sampler=`` picks another one for one call; both give what the LightningModule gives."""
    model = tiny_s2dm(num_inference_steps=3, sampler="DPMSolverMultistepScheduler",
                      sampler_options={"algorithm_type": "sde-dpmsolver++"}).eval()
    batch = fake_batch(num_videos=2, num_frames=3, size=SIZE, flow_size=SIZE)
    expected = (model.sample_videos(batch, _generators(0, 1)) + 1) / 2
    pipe = S2DMPipeline.from_s2dm(model)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
    frames = pipe(batch["caption"], batch["flow"], generator=_generators(0, 1), output_type="pt").frames
    torch.testing.assert_close(frames, expected, atol=BATCH_TOLERANCE, rtol=0)  # same batch; 1e-5 as above

    pipe.save_pretrained(tmp_path / "pipe")
    loaded = S2DMPipeline.from_pretrained(tmp_path / "pipe", prompt_encoder=HashTextEncoder())
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert loaded.scheduler.config.algorithm_type == "sde-dpmsolver++"
    again = loaded(batch["caption"], batch["flow"], generator=_generators(0, 1), output_type="pt").frames
    torch.testing.assert_close(again, frames, atol=BATCH_TOLERANCE, rtol=0)
    assert loaded.to_s2dm().hparams.sampler == "DPMSolverMultistepScheduler"

    unipc = loaded(batch["caption"], batch["flow"], generator=_generators(0, 1), output_type="pt",
                   sampler="UniPCMultistepScheduler").frames
    by_model = model.sample_videos(batch, _generators(0, 1),
                                   sampling=model.sampling.replace(sampler="UniPCMultistepScheduler", sampler_options={}))
    torch.testing.assert_close(unipc, (by_model + 1) / 2, atol=BATCH_TOLERANCE, rtol=0)
    assert (unipc - frames).abs().amax() > 1e-3, "another sampler, another video"
    with pytest.raises(ValueError, match="sampler='EulerAncestralDiscreteScheduler': its step draws noise itself"):
        loaded(batch["caption"], batch["flow"], sampler="EulerAncestralDiscreteScheduler")
    with pytest.raises(ValueError, match="eta=0.5 is DDIM's stochasticity; sampler='DPMSolverMultistepScheduler'"):
        loaded(batch["caption"], batch["flow"], eta=0.5)
