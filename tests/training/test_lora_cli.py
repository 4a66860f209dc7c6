"""LoRA through the real command line: fit with EMA, resume, export merged and as an adapter."""

from __future__ import annotations

import torch

from s2dm_lightning.cli import main
from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline
from tests.conftest import fake_batch
from tests.latent_fixtures import latent_config


def test_lora_fit_checkpoints_only_the_trained_weights_resumes_and_exports(tmp_path, tiny_sd, synthetic_root):
    config = latent_config(tmp_path, tiny_sd, synthetic_root, lora_rank=4, optimizer="torch.optim.Adafactor")
    last = tmp_path / "checkpoints" / "last.ckpt"
    main(["fit", "--config", str(config)])
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    for key in ("state_dict", "current_model_state"):  # the EMA copy and the weights: adapter + flow parts only
        assert checkpoint[key] and all(".lora_" in k or k.startswith("flow_conditioner.") for k in checkpoint[key])
    assert any("row_var" in s or "col_var" in s for s in checkpoint["optimizer_states"][0]["state"].values())

    main(["fit", "--config", str(config), "--trainer.max_steps=4", "--ckpt_path=last"])
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4

    batch = fake_batch(num_videos=1, num_frames=3, size=32, flow_size=4)
    outputs = []
    for form in ("merged", "adapter"):
        main(["export", "--config", str(config), "--ckpt_path=last", f"--output_dir={tmp_path / form}",
              f"--lora={form}"])
        with torch.no_grad():
            model = S2DMPipeline.from_pretrained(tmp_path / form).to_s2dm()
            outputs.append(model.sample_videos(batch, torch.Generator().manual_seed(0)))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-4)  # fused vs two-path float32 rounding


def test_ema_false_leaves_the_ema_callback_out(tmp_path, tiny_sd, synthetic_root):
    config = latent_config(tmp_path, tiny_sd, synthetic_root)  # with EMAWeightAveraging
    main(["fit", "--config", str(config), "--trainer.max_steps=2", "--ema=false"])
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert "current_model_state" not in checkpoint and "averaging_state" not in checkpoint
    assert not any("WeightAveraging" in name for name in checkpoint.get("callbacks", {}))
