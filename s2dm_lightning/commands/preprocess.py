"""``python -m s2dm_lightning preprocess --config CONFIG.yaml [--key value ...]``: the conditions of a dataset only.

Parses the full experiment config (so the same YAML as ``fit`` works), then runs the data module's
``preprocess()`` (flows and occlusions, cached) and, when the model has one, the model's (e.g. S2DM's
latent cache). No training.
"""

from __future__ import annotations

from s2dm_lightning.commands.lightning import S2DMCLI

HELP = """usage: python -m s2dm_lightning preprocess --config CONFIG.yaml [--key value ...]

Compute and cache the conditions of the config's dataset (flows and occlusions; for latent configs
also the VAE latents), resumable, without training. Takes the config and options of `fit --help`."""


def main(argv: list[str]) -> None:
    """Preprocess the dataset of the config ``argv`` names (the arguments of ``fit``)."""
    if any(a in ("-h", "--help") for a in argv):
        print(HELP)
        return
    # One process (no training here), so a 4-GPU config also preprocesses on a smaller machine.
    cli = S2DMCLI(args=[*argv, "--trainer.devices=1", "--trainer.strategy=auto"], run=False)
    preprocess = getattr(cli.datamodule, "preprocess", None)
    if preprocess is None:
        raise SystemExit(f"preprocess: {type(cli.datamodule).__name__} has no preprocess() method")
    preprocess()
    model_preprocess = getattr(cli.model, "preprocess", None)  # e.g. S2DM's latent cache
    if model_preprocess is not None:
        model_preprocess(cli.datamodule)
