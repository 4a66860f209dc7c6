"""The latent cache: every frame of a video once, validity tied to the VAE, same x_0 law as encoding."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
import torch
from torch.utils.data import default_collate

from s2dm_lightning.cli import main
from s2dm_lightning.data import LatentCache
from s2dm_lightning.data.datasets import frames_to_tensor
from s2dm_lightning.data.latent_cache import fill_latent_cache, vae_fingerprint
from s2dm_lightning.data.video_io import read_video
from s2dm_lightning.models import S2DM
from s2dm_lightning.synthetic import SyntheticDataModule
from tests.latent_fixtures import DATA_ARGS, FRAME_SIZE, latent_config


def _model(tiny_sd, tmp_path, **kwargs):
    return S2DM(pretrained=str(tiny_sd), flow_fusion="tokens", flow_size=4, sample_size=4,
                latent_cache_dir=str(tmp_path / "latents"), **kwargs)


def _datamodule(root):
    datamodule = SyntheticDataModule(root=str(root), **DATA_ARGS)
    datamodule.setup("fit")
    return datamodule


def test_cache_holds_every_frame_and_is_tied_to_the_vae(tiny_sd, tmp_path, synthetic_root):
    model = _model(tiny_sd, tmp_path)
    records = _datamodule(synthetic_root).datasets["train"].records
    cache = LatentCache(tmp_path / "latents", vae_fingerprint(model.vae), FRAME_SIZE)
    first = fill_latent_cache(cache, records, model.vae, progress=False)
    assert (first.done, first.skipped, first.failed) == (len(records), 0, [])
    again = fill_latent_cache(cache, records, model.vae, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, len(records), []), "a second run only resumes"
    mean, std = cache.load(records[0].video_id)
    frames = frames_to_tensor(read_video(records[0].path), FRAME_SIZE)
    with torch.no_grad():
        posterior = model.vae.encode(frames).latent_dist
    assert mean.shape == (8, 4, 4, 4)  # all 8 frames of the video, 4 x 4 x 4 latents
    torch.testing.assert_close(mean, posterior.mean, atol=2e-3, rtol=2e-3)  # float16 storage
    torch.testing.assert_close(std, posterior.std, atol=2e-3, rtol=2e-3)

    with torch.no_grad():
        model.vae.decoder.conv_out.bias.add_(1.0)  # e.g. a re-fine-tuned VAE: another fingerprint
    stale = LatentCache(tmp_path / "latents", vae_fingerprint(model.vae), FRAME_SIZE)
    assert not any(stale.has(r.video_id) for r in records), "a different VAE invalidates the cache"


def test_training_from_the_cache_matches_encoding_without_running_the_vae(tiny_sd, tmp_path, synthetic_root,
                                                                         monkeypatch):
    model = _model(tiny_sd, tmp_path, frames_per_step=2)
    datamodule = _datamodule(synthetic_root)
    model.prepare_latent_cache(datamodule)
    dataset = datamodule.datasets["train"]
    reads = []
    monkeypatch.setattr("s2dm_lightning.data.datasets.read_video", lambda *args, **kwargs: reads.append(args))
    batch = default_collate([dataset[i] for i in range(2)])
    assert not reads and "frames" not in batch, "clips of the latent cache do not read their frames"
    assert batch["latent_mean"].shape == batch["latent_std"].shape == (2, 4, 4, 4, 4)  # B, F, C, h, w
    # The same clips as frames: the frames the cached clips picked, read and resized as without a cache.
    frames = [frames_to_tensor(read_video(dataset.records[i].path, indices.tolist()), FRAME_SIZE)
              for i, indices in enumerate(batch["frame_indices"])]
    frame_batch = {**{k: v for k, v in batch.items() if not k.startswith("latent_")}, "frames": torch.stack(frames)}
    samples, encoder_calls = [], []
    model.unet.register_forward_pre_hook(lambda m, args: samples.append(args[0].clone()))
    model.vae.encoder.register_forward_pre_hook(lambda m, args: encoder_calls.append(1))
    with torch.no_grad():
        model.diffusion_loss(batch, torch.Generator().manual_seed(3))
        assert not encoder_calls, "the cached path must not run the VAE encoder"
        model.diffusion_loss(frame_batch, torch.Generator().manual_seed(3))
        assert encoder_calls
    # Same generator: the same frames, the same posterior sample, the same nu and t -> the same x_t.
    torch.testing.assert_close(samples[0], samples[1], atol=2e-3, rtol=2e-3)
    assert samples[0].shape[0] == 4  # 2 videos x frames_per_step 2


def test_the_preprocess_subcommand_also_fills_the_latent_cache(tmp_path, tiny_sd, synthetic_root, capsys):
    config = latent_config(tmp_path, tiny_sd, synthetic_root)
    main(["preprocess", "--config", str(config)])
    meta = json.loads((tmp_path / "latents" / "meta.json").read_text())
    assert meta["resolution"] == FRAME_SIZE and len(list((tmp_path / "latents").glob("*.pt"))) == 5
    assert "latent preprocessing: 5 computed, 0 already cached, 0 failed" in capsys.readouterr().out


def test_a_video_that_cannot_be_encoded_is_named_and_training_stops(tiny_sd, tmp_path, synthetic_root, capsys):
    model = _model(tiny_sd, tmp_path)
    datamodule = _datamodule(synthetic_root)
    records = datamodule.datasets["train"].records
    records.append(replace(records[0], video_id="gone", path=tmp_path / "gone.mp4"))
    model.prepare_latent_cache(datamodule, require_complete=False)  # the preprocess command: report, go on
    out = capsys.readouterr().out
    assert f"latent preprocessing: {len(records) - 1} computed, 0 already cached, 1 failed" in out
    assert "FAILED gone: " in out and "gone.mp4" in out
    with pytest.raises(RuntimeError, match=r"no latents for 1 training video\(s\) \(gone\)"):
        model.prepare_latent_cache(datamodule)  # training: stop before the first step, naming the video
    assert f"latent preprocessing: 0 computed, {len(records) - 1} already cached, 1 failed" in capsys.readouterr().out


def test_filling_waits_for_another_process_that_holds_the_latent_cache(tiny_sd, tmp_path, synthetic_root, capfd):
    from tests.test_run_lock import held_in_another_process

    model = _model(tiny_sd, tmp_path)
    datamodule = _datamodule(synthetic_root)
    with held_in_another_process(tmp_path / "latents", "latent cache", 3) as holder:
        started = time.monotonic()
        model.prepare_latent_cache(datamodule)
        waited = time.monotonic() - started
    out, err = capfd.readouterr()
    assert f"waiting for pid {holder.pid} on " in err and f"which uses latent cache {tmp_path / 'latents'}" in err
    assert waited > 1.5, "the cache was filled while the other process held it (it holds it 3 s)"
    assert "latent preprocessing: 5 computed, 0 already cached, 0 failed" in out
