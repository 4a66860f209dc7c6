"""The checkpoint-vs-config rule on plain dicts (the CLI path is in tests/bad_input/test_cli.py)."""

from __future__ import annotations

import pytest
import torch
import yaml

from s2dm_lightning.commands.checkpoint_config import (
    CheckpointConfigConflict,
    architecture_keys,
    reconcile,
    refuse_mismatched_weights,
)

UNET = {"class_path": "diffusers.UNet2DConditionModel", "init_args": {"in_channels": 6, "block_out_channels": [32, 64]}}
CHECKPOINT = {"_class_path": "s2dm_lightning.models.S2DM", "flow_fusion": "both", "guidance_scale": 2.0,
              "learning_rate": 5e-4, "_instantiator": "lightning.pytorch.cli.instantiate_module"}


def config(**init_args) -> dict:
    return {"class_path": "s2dm_lightning.models.S2DM",
            "init_args": {"unet": UNET, "flow_fusion": "both", "guidance_scale": 2.0, "learning_rate": 0.0005,
                          "eta": 1.0, **init_args}}


def run_folder(tmp_path, model: dict) -> str:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": model}))
    return str(tmp_path / "checkpoints" / "last.ckpt")


def test_same_settings_say_nothing(tmp_path, capsys):
    assert reconcile(CHECKPOINT, config(), str(tmp_path / "x.ckpt")) == []
    assert capsys.readouterr().err == ""


def test_other_settings_keep_the_config_value_and_say_so(tmp_path, capsys):
    notes = reconcile(CHECKPOINT, config(guidance_scale=3.0), str(tmp_path / "x.ckpt"))
    assert notes == ["ckpt_path: model.init_args.guidance_scale=3.0 from the config/command line "
                     "(the checkpoint was trained with 2.0)"]
    assert capsys.readouterr().err.strip() == notes[0]


def test_architecture_differences_are_refused_with_both_values(tmp_path):
    ckpt = run_folder(tmp_path, config())  # the run's config.yaml holds the unet the hparams leave out
    other_unet = {**UNET, "init_args": {**UNET["init_args"], "in_channels": 3}}
    with pytest.raises(CheckpointConfigConflict) as error:
        reconcile(CHECKPOINT, config(flow_fusion="tokens", unet=other_unet), ckpt)
    message = str(error.value)
    assert "model.init_args.flow_fusion: checkpoint both, config tokens" in message
    assert "model.init_args.unet.init_args.in_channels: checkpoint 6, config 3" in message
    assert "--model.init_args.flow_fusion=both --model.init_args.unet.init_args.in_channels=6" in message
    assert str(tmp_path / "config.yaml") in message


def test_a_config_yaml_of_another_model_is_not_used(tmp_path):
    ckpt = run_folder(tmp_path, {"class_path": "s2dm_lightning.models.FlowGenerator", "init_args": {"unet": UNET}})
    other_unet = {**UNET, "init_args": {**UNET["init_args"], "in_channels": 3}}
    assert reconcile(CHECKPOINT, config(unet=other_unet), ckpt) == []


def test_modules_without_declared_keys_treat_nested_classes_as_architecture():
    assert architecture_keys("s2dm_lightning.models.S2DM", {})[1:] == ("unet", "vae", "text_encoder.class_path",
                                                                     "noise_scheduler", "sample_size", "flow_fusion",
                                                                     "flow_size", "flow_patch_size",
                                                                     "reference_condition", "lora_rank",
                                                                     "lora_alpha", "lora_target_modules",
                                                                     "trainable_parameters")
    assert architecture_keys("tests.NoSuchModule", {"unet": UNET, "lr": 1.0}) == ("_class_path", "unet")


def test_weights_of_other_shapes_are_named():
    with pytest.raises(CheckpointConfigConflict, match=r"unet.conv_in.weight: checkpoint \(8, 6, 3, 3\), config \(8, 3, 3, 3\)"):
        refuse_mismatched_weights({"unet.conv_in.weight": torch.zeros(8, 6, 3, 3)},
                                  {"unet.conv_in.weight": torch.zeros(8, 3, 3, 3)}, "x.ckpt")
    refuse_mismatched_weights({"a": torch.zeros(2)}, {"a": torch.zeros(2), "b": torch.zeros(1)}, "x.ckpt")
