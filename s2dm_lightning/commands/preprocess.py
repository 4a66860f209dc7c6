"""``python -m s2dm_lightning preprocess --config CONFIG.yaml [--key value ...]``: the conditions of a dataset only.

Parses the full experiment config (so the same YAML as ``fit`` works) but builds only the data module, then
runs its ``preprocess()`` (flows and occlusions, cached). A config with ``model.init_args.latent_cache_dir``
also gets its VAE latents, from the VAE alone (``vae_path`` or ``pretrained/vae``): no UNet, text encoder or
trainer is built, so nothing but the VAE's weights is read. No training.
"""

from __future__ import annotations

from typing import Any

import torch

from s2dm_lightning.commands.lightning import S2DMCLI

HELP = """usage: python -m s2dm_lightning preprocess --config CONFIG.yaml [--key value ...]

Compute and cache the conditions of the config's dataset (flows and occlusions; for latent configs
also the VAE latents), resumable, without training. Takes the config and options of `fit --help`;
only the data module (and, for latents, the VAE) is built."""


class DataOnlyCLI(S2DMCLI):
    """The experiment's parser (every key checked as ``fit`` checks it), building only ``data``."""

    def instantiate_classes(self) -> None:
        config = self.config.clone()
        config.model = None  # the networks: the VAE, if needed, is loaded by itself below
        config.trainer = None
        instantiate = getattr(self.parser, "instantiate", None) or self.parser.instantiate_classes
        self.config_init = instantiate(config)
        self.datamodule = self._get(self.config_init, "data")
        self.model = None

    def after_instantiate_classes(self) -> None:
        """No model, so no checkpoint weights to check."""


def main(argv: list[str]) -> None:
    """Preprocess the dataset of the config ``argv`` names (the arguments of ``fit``)."""
    if any(a in ("-h", "--help") for a in argv):
        print(HELP)
        return
    cli = DataOnlyCLI(args=argv, run=False)
    preprocess = getattr(cli.datamodule, "preprocess", None)
    if preprocess is None:
        raise SystemExit(f"preprocess: {type(cli.datamodule).__name__} has no preprocess() method")
    preprocess()
    model_args = _init_args(cli.config.get("model"))
    if model_args.get("latent_cache_dir") is not None:
        _latents_with_vae_alone(cli, model_args, argv)


def _init_args(section: Any) -> dict[str, Any]:
    init_args = getattr(section, "init_args", None) if section is not None else None
    return dict(vars(init_args)) if init_args is not None else {}


def _latents_with_vae_alone(cli: DataOnlyCLI, model_args: dict[str, Any], argv: list[str]) -> None:
    """The training videos' latents from the config's VAE (on a GPU if there is one)."""
    from s2dm_lightning.models.latent_preparation import cache_training_latents
    from s2dm_lightning.models.pretrained import resolve_vae

    if model_args.get("vae") is not None:  # a VAE given as a class: build the model as fit does
        vae = S2DMCLI(args=[*argv, "--trainer.devices=1", "--trainer.strategy=auto",
                            "--trainer.logger=false"], run=False).model.vae
    else:
        vae = resolve_vae(model_args.get("pretrained"), model_args.get("vae_path"))
    if vae is not None:
        vae.requires_grad_(False).eval()
    cli.datamodule.setup("fit")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cache_training_latents(cli.datamodule, vae, model_args["latent_cache_dir"], device, require_complete=False)
