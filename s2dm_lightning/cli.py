"""The names scripts and notebooks import (``from s2dm_lightning.cli import S2DMCLI, main``).

The command line itself lives in :mod:`s2dm_lightning.commands`.
"""

from s2dm_lightning.commands import main
from s2dm_lightning.commands.lightning import S2DMCLI

__all__ = ["S2DMCLI", "main"]
