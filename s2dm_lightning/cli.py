"""``s2dm_lightning.cli``: the names scripts and notebooks import; the command line lives in :mod:`s2dm_lightning.commands`."""

from s2dm_lightning.commands import main
from s2dm_lightning.commands.lightning import S2DMCLI

__all__ = ["S2DMCLI", "main"]
