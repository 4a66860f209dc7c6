"""Bad input of the diffusers pipeline and its motion sources, met through ``python -m s2dm_lightning sample``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _sample(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "s2dm_lightning", "sample", "--prompt", "a red square", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def _last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.slow  # a CLI subprocess: ~6 s of imports on an idle machine, far more on a busy one
def test_pipeline_folder_with_pickle(tmp_path):
    from s2dm_lightning.models import S2DM
    from s2dm_lightning.models.export import save_pretrained
    from tests.conftest import HashTextEncoder, tiny_unet

    model = S2DM(tiny_unet(in_channels=3), HashTextEncoder(), flow_fusion="tokens", flow_size=8)
    save_pretrained(model, tmp_path / "received")
    pickle = tmp_path / "received" / "unet" / "diffusion_pytorch_model.bin"
    torch.save(model.unet.state_dict(), pickle)
    result = _sample(f"--pipeline={tmp_path / 'received'}", "--motion=zoom:2", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    last = _last_line(result)
    assert "UnsafePipelineFolderError" in last and str(pickle) in last and "allow_pickle=True" in last
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a CLI subprocess
def test_unknown_motion_formula(tmp_path):
    result = _sample("--pipeline=does/not/matter", "--motion=spin:3", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    last = _last_line(result)
    assert last.startswith("ValueError") and "--motion='spin:3'" in last and "unknown motion 'spin'" in last
    assert "translate:DX,DY" in last and not (tmp_path / "out").exists()


@pytest.mark.slow  # a CLI subprocess
def test_reference_image_unreadable(tmp_path):
    not_an_image = tmp_path / "first.png"
    not_an_image.write_text("not a png")
    result = _sample("--pipeline=does/not/matter", "--motion=zoom:2", f"--image={not_an_image}",
                     f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    last = _last_line(result)
    assert last.startswith("ValueError") and f"--image: '{not_an_image}' is not a readable image" in last
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a CLI subprocess
def test_reference_image_without_reference_condition(tmp_path):
    import numpy as np
    import PIL.Image

    from s2dm_lightning.config import load_module
    from s2dm_lightning.models import S2DM
    from tests.pipelines.conftest import S2DM_YAML

    config = tmp_path / "s2dm.yaml"
    config.write_text(S2DM_YAML)  # reference_condition: none (the default)
    checkpoint = tmp_path / "s2dm.ckpt"
    torch.save({"state_dict": load_module(config, None, S2DM).state_dict()}, checkpoint)
    image = tmp_path / "first.png"
    PIL.Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    result = _sample(f"--s2dm_config={config}", f"--s2dm_ckpt={checkpoint}", "--motion=zoom:2", f"--image={image}",
                     f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    last = _last_line(result)
    assert last.startswith("ValueError") and "model.init_args.reference_condition='none'" in last, result.stderr[-2000:]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a CLI subprocess
def test_sample_unknown_sampler(tmp_path):
    result = _sample("--s2dm_config=not/read.yaml", "--s2dm_ckpt=not/read.ckpt", "--motion=zoom:2",
                     "--sampler=DPMSolverMultistep", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    last = _last_line(result)
    assert last.startswith("ValueError") and "--sampler='DPMSolverMultistep' is not a diffusers scheduler class" in last
    assert "DPMSolverMultistepScheduler" in last and not (tmp_path / "out").exists()
