"""Library output a user of the command line cannot act on, silenced (:func:`silence_library_chatter`).

Only exact messages, each named here with why; every other warning still shows (``tests/commands/
test_quiet_cli.py`` lists what the commands print on the shipped configs).
"""

from __future__ import annotations

import logging
import warnings

# Lightning's own pytree helper calls isinstance(x, LeafSpec), which torch >= 2.9 deprecates: a note to
# Lightning's developers about their code, printed once in every fit/test/predict.
LEAFSPEC_DEPRECATION = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
# An advertisement for Lightning's cloud services, printed by every Trainer.
LIGHTNING_TIPS = "💡 Tip:"


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(LIGHTNING_TIPS)


def silence_library_chatter() -> None:
    """Install the filters (idempotent): the LeafSpec deprecation and Lightning's tips."""
    warnings.filterwarnings("ignore", message=LEAFSPEC_DEPRECATION)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
