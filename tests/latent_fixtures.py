"""Fixtures of the latent (Stable Diffusion 1.5) tests: a tiny SD folder, tiny synthetic data, configs.

The fixtures are made visible to every test folder by tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from s2dm_lightning.synthetic import SyntheticDataModule
from tests.tiny_sd import make_tiny_sd_folder

# 32-px frames -> 4 x 4 latents (the tiny VAE downsamples 8x, like SD's); flows at latent size.
FRAME_SIZE, LATENT_SIZE = 32, 4
DATA_ARGS = dict(num_videos=6, frames_per_video=8, image_size=FRAME_SIZE, resolution=FRAME_SIZE,
                 flow_size=LATENT_SIZE, num_frames=4, batch_size=2, val_videos=1, dis_preset="ultrafast")


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    return make_tiny_sd_folder(tmp_path_factory.mktemp("sd") / "stable-diffusion-v1-5")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """6 synthetic videos of 8 frames with flows at 4 x 4, generated and preprocessed once."""
    root = tmp_path_factory.mktemp("data") / "synthetic"
    datamodule = SyntheticDataModule(root=str(root), **DATA_ARGS)
    datamodule.preprocess(progress=False)
    return root


def latent_config(tmp_path: Path, tiny_sd: Path, data_root: Path, callbacks: list | None = None,
                  ema: bool = True, **model_args) -> Path:
    """A tiny latent-space S2DM config (the mug.yaml recipe at toy size), written to tmp_path.

    ``ema=False`` leaves out Lightning's EMAWeightAveraging: it holds a local function and
    cannot be pickled, so it does not work with ``ddp_spawn`` (the ``ddp`` strategy is fine).
    """
    ema_callback = {"class_path": "lightning.pytorch.callbacks.EMAWeightAveraging", "init_args": {"decay": 0.5}}
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu", "devices": 1, "precision": "32-true", "max_steps": 2,
            "limit_val_batches": 0, "num_sanity_val_steps": 0, "logger": False,
            "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": str(tmp_path),
            "callbacks": [
                {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                 "init_args": {"dirpath": str(tmp_path / "checkpoints"), "every_n_train_steps": 2, "save_top_k": 1,
                               "save_last": "link"}},
                *([ema_callback] if ema else []),
                *(callbacks or []),
            ],
        },
        "model": {
            "class_path": "s2dm_lightning.models.S2DM",
            "init_args": {
                "pretrained": str(tiny_sd), "flow_fusion": "tokens", "flow_size": LATENT_SIZE,
                "sample_size": LATENT_SIZE, "gradient_checkpointing": True,
                "latent_cache_dir": str(tmp_path / "latents"), "learning_rate": 1e-3,
                "num_inference_steps": 2, **model_args,
            },
        },
        "data": {"class_path": "s2dm_lightning.synthetic.SyntheticDataModule",
                 "init_args": {"root": str(data_root), **DATA_ARGS}},
    }
    path = tmp_path / "latent.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
