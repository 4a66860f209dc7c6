"""s2dm_lightning/training/optimizers.py: the optimiser class a config names, the LR schedules, gradient clipping."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import yaml

from s2dm_lightning.commands.lightning import S2DMCLI
from s2dm_lightning.models import S2DM
from s2dm_lightning.training import AdamW8bit, build_optimizer, lr_factor
from tests.bad_input.cli import tiny_config
from tests.conftest import HashTextEncoder, fake_batch, tiny_unet


def make_model(**kwargs):
    return S2DM(tiny_unet(in_channels=6), HashTextEncoder(), flow_fusion="both", flow_size=8, **kwargs)


def test_default_is_adamw_with_the_modules_learning_rate_and_weight_decay():
    model = make_model(learning_rate=3e-4, weight_decay=0.01)
    optimizer = model.configure_optimizers()["optimizer"]
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.defaults["lr"] == 3e-4 and optimizer.defaults["weight_decay"] == 0.01


def test_the_config_names_the_class_and_its_arguments_reach_it(tmp_path):
    """Through jsonargparse as the CLI parses it: class_path + init_args; lr comes from learning_rate."""
    path = tiny_config(tmp_path, model={"learning_rate": 2e-5, "optimizer": {
        "class_path": "torch.optim.Adafactor", "init_args": {"beta2_decay": -0.7}}})
    cli = S2DMCLI(args=["--config", str(path), "--trainer.logger=false"], run=False)
    optimizer = cli.model.configure_optimizers()["optimizer"]
    assert type(optimizer) is torch.optim.Adafactor
    assert optimizer.defaults["beta2_decay"] == -0.7 and optimizer.defaults["lr"] == 2e-5
    assert "optimizer" not in cli.model.hparams  # a callable: kept out of the checkpoint's hyperparameters


def test_lr_in_the_optimizers_init_args_is_refused(tmp_path):
    path = tiny_config(tmp_path, model={"optimizer": {"class_path": "torch.optim.Adafactor", "init_args": {"lr": 1.0}}})
    with pytest.raises(SystemExit):
        S2DMCLI(args=["--config", str(path)], run=False)


def test_8bit_adamw_runs_a_step_or_names_the_extra():
    layer = torch.nn.Linear(128, 64)  # 8192 weights >= min_8bit_size: 8-bit moments
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"s2dm_lightning\[optim8bit\]"):
            AdamW8bit(layer.parameters(), lr=1e-3, weight_decay=0.0)
        return
    optimizer = AdamW8bit(layer.parameters(), lr=1e-3, weight_decay=0.0)
    before = layer.weight.detach().clone()
    layer(torch.randn(4, 128)).pow(2).mean().backward()
    optimizer.step()
    assert not torch.equal(before, layer.weight)
    assert optimizer.state[layer.weight]["state1"].dtype == torch.uint8


def _lrs(schedule, warmup, decay, steps):
    parameter = torch.nn.Parameter(torch.zeros(1))
    answer = build_optimizer([parameter], None, learning_rate=1.0, weight_decay=0.0, schedule=schedule,
                             warmup_steps=warmup, decay_steps=decay)
    optimizer, scheduler = answer["optimizer"], answer["lr_scheduler"]["scheduler"]
    assert answer["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_constant_schedule_warms_up_linearly_then_stays():
    assert _lrs("constant", 4, None, 6) == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert _lrs("constant", 0, None, 2) == [1.0, 1.0]


def test_cosine_schedule_at_chosen_steps():
    lrs = _lrs("cosine", 2, 10, 12)  # W = 2, T = 10: cos part at step s is 0.5 (1 + cos(pi (s - 1) / 9))
    assert lrs[:2] == [0.5, 1.0]
    assert lrs[5] == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 9)))
    assert lrs[9] == pytest.approx(0.5 * (1 + math.cos(math.pi * 8 / 9)))
    assert lrs[10] == pytest.approx(0.0, abs=1e-12) and lrs[11] == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(5, "cosine", 2, 10) == pytest.approx(lrs[5])


class _RecordingSGD(torch.optim.SGD):
    norms: list[float] = []

    def step(self, closure=None):
        result = super().step(closure) if closure is None else None
        if closure is not None:
            result = closure()
            grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
            _RecordingSGD.norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
            super().step()
        return result


@pytest.mark.parametrize("clip", [None, 1.0])
def test_gradient_clip_val_clips_a_huge_gradient(clip, monkeypatch):
    model = make_model(optimizer=_RecordingSGD, learning_rate=1e-6)
    real = type(model).prediction_loss
    monkeypatch.setattr(type(model), "prediction_loss", lambda self, *a: 1e6 * real(self, *a))  # huge gradients
    _RecordingSGD.norms = []
    batch = fake_batch(num_videos=2, num_frames=3)
    trainer = L.Trainer(max_steps=1, gradient_clip_val=clip, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, torch.utils.data.DataLoader([batch], batch_size=None))
    (norm,) = _RecordingSGD.norms
    if clip is None:
        assert norm > 1e3
    else:
        assert norm == pytest.approx(1.0, rel=1e-4)  # clip_grad_norm_ scales to max_norm / (norm + 1e-6)


def test_paper_configs_clip_at_one():
    for name in ("mug", "mhad", "mug_flow", "mhad_flow"):
        assert yaml.safe_load(open(f"configs/{name}.yaml"))["trainer"]["gradient_clip_val"] == 1.0
