"""A quiet command line: fit, predict and sample on a tiny synthetic config print only the warnings of
:data:`ALLOWED` (each with why a user may see it); any other warning fails the test (``commands/quiet.py``
filters the ones a user cannot act on)."""

from __future__ import annotations

import re

from tests.bad_input.cli import run_cli, tiny_config

# A Python warning as printed on stderr: "path:line: SomeWarning: message".
WARNING_LINE = re.compile(r"^\S+:\d+: (\w*Warning): (.*)$")

# What these commands may print as a warning or a library tip, each with why. Empty: on this config nothing
# is left that a user could act on (commands/quiet.py drops Lightning's LeafSpec deprecation and its
# litlogger/litmodels tips; preprocess, run folders and the schedule notice removed the rest). A new entry
# needs its reason here.
ALLOWED: set[tuple[str, str]] = set()


def _warnings(stderr: str) -> set[tuple[str, str]]:
    found = set()
    for line in stderr.splitlines():
        match = WARNING_LINE.match(line.strip())
        if match:
            found.add((match.group(1), match.group(2)))
        elif "Tip:" in line:  # Lightning's advertisements, logged rather than warned
            found.add(("Tip", line.strip()))
    return found


def _unexpected(stderr: str) -> set[tuple[str, str]]:
    return {(kind, text) for kind, text in _warnings(stderr)
            if not any(kind == a_kind and text.startswith(a_text) for a_kind, a_text in ALLOWED)}


# Three CLI processes, 23 s on 2 cores. `test` is not here: its I3D needs >= 9 frames of >= 193 px, far beyond a
# tiny config.
def test_fit_predict_and_sample_print_only_allowed_warnings(tmp_path):
    config = tiny_config(tmp_path)
    common = ["--config", str(config), "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger",
              f"--trainer.logger.save_dir={tmp_path / 'logs'}", "--trainer.enable_checkpointing=true"]
    fit = run_cli("fit", *common, "--trainer.max_steps=2", "--trainer.val_check_interval=2",
                  "--trainer.check_val_every_n_epoch=null", "--trainer.limit_val_batches=1")
    assert fit.returncode == 0, fit.stderr[-3000:]
    (checkpoint,) = (tmp_path / "logs").rglob("*.ckpt")
    runs = {
        "fit": fit,
        "predict": run_cli("predict", *common, f"--ckpt_path={checkpoint}", "--trainer.limit_predict_batches=1"),
        "sample": run_cli("sample", "--prompt", "a red square moves up", f"--s2dm_config={config}",
                          f"--s2dm_ckpt={checkpoint}", "--motion=translate:4,0", "--num_frames=4", "--scale=1",
                          f"--output_dir={tmp_path / 'samples'}"),
    }
    for name, result in runs.items():
        assert result.returncode == 0, f"{name}:\n{result.stderr[-3000:]}"
        assert _unexpected(result.stderr) == set(), f"{name} printed warnings not allowed:\n{result.stderr[-3000:]}"
