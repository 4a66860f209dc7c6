"""``demo``'s command: the core package works without Gradio, and a missing extra or model is named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from s2dm_lightning.commands import demo as demo_command
from s2dm_lightning.commands.errors import CommandLineError


def test_the_core_package_and_the_demo_functions_import_without_gradio():
    code = ("import sys; import s2dm_lightning.cli, s2dm_lightning.pipelines, s2dm_lightning.demo.generate; "
            "print('gradio' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_without_gradio_the_demo_says_which_extra_to_install(monkeypatch):
    real_find_spec = demo_command.importlib.util.find_spec
    monkeypatch.setattr(demo_command.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gradio" else real_find_spec(name, *a))
    with pytest.raises(CommandLineError, match=r'pip install -e "\.\[demo\]"'):
        demo_command.main(["--config", "configs/synthetic.yaml", "--ckpt_path", "last.ckpt"])


@pytest.mark.parametrize(("argv", "message"), [
    ([], "--config CONFIG --ckpt_path CKPT, or --pipeline FOLDER"),
    (["--config", "configs/synthetic.yaml", "--ckpt_path", "missing.ckpt"], "--ckpt_path=missing.ckpt does not exist"),
    (["--pipeline", "no_such_folder"], "--pipeline=no_such_folder is not a folder"),
])
def test_a_missing_model_is_named_before_anything_loads(argv, message):
    pytest.importorskip("gradio")
    with pytest.raises(CommandLineError, match=message.replace(".", r"\.").replace("[", r"\[")):
        demo_command.main(argv)
