"""Two CPU processes (ddp_spawn, gloo) through the CLI: the ranks must draw different training noise.

A common seed on every rank (``seed_everything`` alone) makes all ranks draw the same nu,
so DDP would silently train on copies of the same noise; S2DM's noise generator adds the rank.
"""

from __future__ import annotations

import torch

from s2dm_lightning.cli import main
from tests.latent_fixtures import latent_config


def test_two_process_ddp_fit_draws_different_noise_per_rank(tmp_path, tiny_sd, synthetic_root):
    config = latent_config(tmp_path, tiny_sd, synthetic_root, callbacks=[
        {"class_path": "tests.callback_helpers.NoiseRecorder", "init_args": {"out_dir": str(tmp_path)}}], ema=False)
    main(["fit", "--config", str(config), "--trainer.strategy=ddp_spawn", "--trainer.devices=2",
          "--trainer.accelerator=cpu"])
    nu0, nu1 = (torch.load(tmp_path / f"nu_rank{r}.pt", weights_only=True) for r in (0, 1))
    assert nu0.shape == nu1.shape == (2, 4, 4, 4, 4)  # per rank: 2 videos x 4 frames x (4, 4, 4) latents
    assert not torch.allclose(nu0, nu1), "DDP ranks drew the same noise"
    assert (nu0[:, 1:] == nu0[:, :1]).all(), "frames of a video share nu on every rank"
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 2
    assert len(list((tmp_path / "latents").glob("*.pt"))) == 5, "the ranks filled the latent cache together"
