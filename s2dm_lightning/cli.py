"""Command line: ``python -m s2dm_lightning {fit,validate,test,predict,preprocess} --config ...``.

fit/validate/test/predict are LightningCLI's (jsonargparse parses and checks every key of
the YAML against the typed ``__init__`` arguments). ``preprocess`` parses the same config
and only runs the data module's flow preprocessing.
"""

from __future__ import annotations

import sys

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

EXTRA_SUBCOMMANDS = {
    "preprocess": "Compute and cache the flow/occlusion conditions of a dataset (no training).",
}


class S2DMCLI(LightningCLI):
    """LightningCLI with S2DM's defaults: any LightningModule / LightningDataModule by class_path."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        super().__init__(LightningModule, LightningDataModule, *args, **kwargs)


def _usage() -> str:
    lines = ["usage: python -m s2dm_lightning {fit,validate,test,predict,preprocess} --config CONFIG.yaml [...]"]
    lines += [f"  {name}: {text}" for name, text in EXTRA_SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] == "preprocess":
        if any(a in ("-h", "--help") for a in argv[1:]):
            print(_usage())
            return
        # Parse the full experiment config (so the same YAML works), then preprocess only.
        cli = S2DMCLI(args=argv[1:], run=False)
        preprocess = getattr(cli.datamodule, "preprocess", None)
        if preprocess is None:
            raise SystemExit(f"preprocess: {type(cli.datamodule).__name__} has no preprocess() method")
        preprocess()
        return
    S2DMCLI(args=argv)


if __name__ == "__main__":
    main()
