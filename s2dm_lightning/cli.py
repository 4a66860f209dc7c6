"""``s2dm_lightning.cli``: the names scripts and notebooks import; the command line lives in :mod:`s2dm_lightning.commands`."""

from s2dm_lightning.commands.lightning import S2DMCLI, main

__all__ = ["S2DMCLI", "main"]
