"""A quiet command line: fit, predict and sample on a tiny synthetic config print only the warnings of
:data:`ALLOWED` (each with why a user may see it); any other warning fails the test (``commands/quiet.py``
filters the ones a user cannot act on)."""

from __future__ import annotations

import re

from tests.bad_input.cli import run_cli, tiny_config

# A Python warning as printed on stderr: "path:line: SomeWarning: message"; Lightning's own formatter drops
# the class: "path.py:line: message".
WARNING_LINE = re.compile(r"^\S+:\d+: (\w*Warning): (.*)$")
LIGHTNING_WARNING_LINE = re.compile(r"^\S+\.py:\d+: (.*)$")

# What these commands may print as a warning or a library tip, each with why. Only one, that the user can act
# on (commands/quiet.py drops Lightning's LeafSpec deprecation and its
# litlogger/litmodels tips; preprocess, run folders and the schedule notice removed the rest). A new entry
# needs its reason here.
ALLOWED: set[tuple[str, str]] = {
    # The tiny config keeps Trainer's default log_every_n_steps=50 with 5 batches an epoch: true, and the user
    # can act on it (every config in configs/ sets log_every_n_steps to fit its data).
    ("LightningWarning", "The number of training batches (5) is smaller than the logging interval"),
}


def _warnings(stderr: str) -> set[tuple[str, str]]:
    found = set()
    for line in stderr.splitlines():
        match = WARNING_LINE.match(line.strip())
        lightning = LIGHTNING_WARNING_LINE.match(line.strip())
        if match:
            found.add((match.group(1), match.group(2)))
        elif lightning:
            found.add(("LightningWarning", lightning.group(1)))
        elif "Tip:" in line:  # Lightning's advertisements, logged rather than warned
            found.add(("Tip", line.strip()))
    return found


def _unexpected(stderr: str) -> set[tuple[str, str]]:
    return {(kind, text) for kind, text in _warnings(stderr)
            if not any(kind == a_kind and text.startswith(a_text) for a_kind, a_text in ALLOWED)}


# Four CLI processes, about 40 s on 2 cores. `test` scores with the tiny custom feature extractor (the I3D
# needs >= 9 frames of >= 193 px, far beyond a tiny config); 12 videos give its real side 2 test clips.
def test_fit_predict_sample_and_test_print_only_allowed_warnings(tmp_path):
    config = tiny_config(tmp_path, data={"num_videos": 12})
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
        "test": run_cli("test", *common, f"--ckpt_path={checkpoint}", "--metrics.num_videos=2",
                        "--metrics.feature_extractor=s2dm_lightning.evaluation.RandomConv3dFeatures",
                        f"--metrics.real_stats_cache_dir={tmp_path / 'real_stats'}"),
    }
    for name, result in runs.items():
        assert result.returncode == 0, f"{name}:\n{result.stderr[-3000:]}"
        assert _unexpected(result.stderr) == set(), f"{name} printed warnings not allowed:\n{result.stderr[-3000:]}"
