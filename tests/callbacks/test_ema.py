"""EMA before its start (s2dm_lightning/callbacks/ema.py): a run shorter than ``update_starting_at_step``
validates, checkpoints and exports the trained network, not the initial one, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from s2dm_lightning.models.export import load_pretrained
from tests.bad_input.cli import run_cli
from tests.test_resume import tiny_config

MAX_STEPS = 3


def _short_run_config(tmp_path: Path) -> Path:
    """configs/synthetic.yaml's callbacks (its EMA, as shipped) at toy size: 3 steps, EMA starting at step 100,
    one validation round at the end, a WeightProbe after the EMA callback."""
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    trainer = config["trainer"]
    trainer.update(max_steps=MAX_STEPS, val_check_interval=MAX_STEPS, check_val_every_n_epoch=None,
                   limit_val_batches=1)
    checkpoint, ema = trainer["callbacks"][:2]
    assert ema["class_path"].endswith("EMAWeightAveraging")
    ema["init_args"]["update_starting_at_step"] = 100  # later than max_steps: averaging never starts
    checkpoint["init_args"]["every_n_train_steps"] = MAX_STEPS
    probe = {"class_path": "tests.callback_helpers.WeightProbe", "init_args": {"out_file": str(tmp_path / "w.pt")}}
    trainer["callbacks"] = [checkpoint, ema, probe]
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_run_shorter_than_the_ema_start_validates_checkpoints_and_exports_the_trained_weights(tmp_path):
    config = _short_run_config(tmp_path)
    fit = run_cli("fit", "--config", str(config))
    assert fit.returncode == 0, fit.stderr[-3000:]
    weights = torch.load(tmp_path / "w.pt", weights_only=True)
    initial, live, validation = weights["initial"], weights["live"], weights["validation"]
    unet_keys = [k for k in live if k.startswith("unet.")]
    # Training moved the network (else "equal to the live weights" would not tell trained from initial).
    assert any(not torch.equal(initial[k], live[k]) for k in unet_keys)
    # Every comparison below is between copies of the same tensors (no arithmetic): exact equality holds.
    for key in live:
        assert torch.equal(validation[key], live[key]), f"validation used other weights than the live ones: {key}"

    (last,) = (tmp_path / "logs").rglob("last.ckpt")
    state = torch.load(last, weights_only=True, map_location="cpu")["state_dict"]
    for key in unet_keys:
        assert torch.equal(state[key], live[key]), f"the checkpoint's state_dict is not the trained network: {key}"

    export = run_cli("export", "--config", str(config), "--ckpt_path", str(last), "--output_dir",
                     str(tmp_path / "export"))
    assert export.returncode == 0, export.stderr[-3000:]
    from tests.conftest import HashTextEncoder

    exported = load_pretrained(tmp_path / "export", text_encoder=HashTextEncoder()).state_dict()
    for key in unet_keys:
        assert torch.equal(exported[key], live[key]), f"the export is not the trained network: {key}"
