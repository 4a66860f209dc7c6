"""The latent recipe through the real command line: fit, resume from last.ckpt with EMA, predict, export."""

from __future__ import annotations

import torch

from s2dm_lightning.cli import main
from s2dm_lightning.models.export import load_pretrained
from tests.latent_fixtures import latent_config


def _probe(out_file):
    return ["--trainer.callbacks+=tests.callback_helpers.ResumeProbe", f"--trainer.callbacks.out_file={out_file}"]


def test_fit_resume_predict_and_export_in_latent_space(tmp_path, tiny_sd, synthetic_root):
    config = latent_config(tmp_path, tiny_sd, synthetic_root)
    last = tmp_path / "checkpoints" / "last.ckpt"

    # 1. two steps from the tiny SD folder, latents cached, EMA on
    main(["fit", "--config", str(config)])
    first = torch.load(last, map_location="cpu", weights_only=True)
    assert first["global_step"] == 2
    assert "current_model_state" in first and "averaging_state" in first, "EMA weights are checkpointed"
    ema, current = first["state_dict"], first["current_model_state"]
    assert any(not torch.equal(ema[k], current[k]) for k in ema if k.startswith("unet.")), "EMA lags the weights"
    cached = sorted(p.stem for p in (tmp_path / "latents").glob("*.pt"))
    assert (tmp_path / "latents" / "meta.json").is_file() and len(cached) == 5  # the 5 training videos
    assert torch.load(tmp_path / "latents" / f"{cached[0]}.pt", weights_only=True)["mean"].shape == (8, 4, 4, 4)

    # 2. resume: the step count continues, the EMA and the raw weights are restored separately
    main(["fit", "--config", str(config), "--trainer.max_steps=4", "--ckpt_path=last", *_probe(tmp_path / "probe.pt")])
    probe = torch.load(tmp_path / "probe.pt", weights_only=True)
    assert probe["global_step"] == 2
    for name, value in ema.items():
        torch.testing.assert_close(probe["ema"][name], value, rtol=0, atol=0)
    for name, value in current.items():
        torch.testing.assert_close(probe["current"][name], value, rtol=0, atol=0)
    second = torch.load(last, map_location="cpu", weights_only=True)
    assert second["global_step"] == 4

    # 3. sampling in latent space decodes to 32-px frames
    out = tmp_path / "predict"
    main(["predict", "--config", str(config), f"--ckpt_path={last}", "--trainer.limit_predict_batches=1",
          "--trainer.callbacks+=s2dm_lightning.callbacks.VideoPredictionWriter",
          f"--trainer.callbacks.output_dir={out}"])
    assert list(out.glob("*.mp4")) and (out / "contact_sheet.png").is_file()

    # 4. export the EMA weights; the folder loads without the config
    main(["export", "--config", str(config), "--ckpt_path=last", f"--output_dir={tmp_path / 'export'}"])
    model = load_pretrained(tmp_path / "export")
    exported = model.state_dict()
    for name, value in second["state_dict"].items():
        torch.testing.assert_close(exported[name], value, rtol=0, atol=0)
    assert model.hparams.latent_cache_dir is None and model.frame_shape() == (4, 4, 4)
