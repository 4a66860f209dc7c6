"""Held-out combinations (subject x expression, subject x action): the paper's test splits.

Paper Sec. 4.1: 36 of MUG's 364 subject-expression combinations and 21 of UTD-MHAD's
216 subject-action combinations are held out for test, so that no test combination is
seen in training. We draw the same fraction of the combinations present in the data
(``round(paper_held_out / paper_total * n)``, at least 1 and at most n - 1) with a fixed
seed, write them to a JSON split file, and reuse that file on every later run: the
split does not move when videos are added or the drawing code changes. A video whose
combination is not in the file is a training video.

``split: lfdm`` (the ``lfdm`` evaluation protocol) instead holds out whole *subjects*, LFDM's lists
(nihaomiao/CVPR23_LFDM at 3601635): MUG ``DM/datasets_mug.py`` lines 124-126 (drawn in
``preprocessing/preprocess_MUG.py`` lines 11-13 with ``random.seed(1234)`` over the sorted subject folders, the
first 26 for training; the test list is also written there, lines 29-32), UTD-MHAD subjects 6, 8, 4, 7
(``preprocessing/preprocess_MHAD.py`` line 183, ``DM/datasets_mhad.py`` line 175). No split file is written.

Split file::

    {"format": 1, "dataset": "MUG", "seed": 0, "num_combinations": 364,
     "test_combinations": ["001/anger", "020/fear", ...]}
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable
from pathlib import Path

from s2dm_lightning.io import atomic_write_bytes

log = logging.getLogger(__name__)

SPLIT_FORMAT = 1
#: The test subjects of LFDM's subject split, per dataset (see the module docstring for the source lines).
LFDM_TEST_SUBJECTS: dict[str, tuple[str, ...]] = {
    "MUG": ("001", "002", "006", "007", "010", "013", "014", "020", "027", "032", "033", "040", "046", "048", "049",
            "052", "064", "065", "066", "070", "072", "073", "074", "078", "079", "082"),
    "UTD-MHAD": ("6", "8", "4", "7"),
}
SPLITS = ("s2dm", "lfdm")


def check_split(split: str) -> str:
    """``data.init_args.split`` must be ``s2dm`` (held-out combinations) or ``lfdm`` (held-out subjects)."""
    if split not in SPLITS:
        raise ValueError(f"data.init_args.split must be one of {list(SPLITS)}, got {split!r}")
    return split


def is_lfdm_test_subject(dataset: str, subject: str | int) -> bool:
    """Whether ``subject`` (MUG "020", MHAD 6) is one of LFDM's test subjects of ``dataset``."""
    return str(subject) in LFDM_TEST_SUBJECTS[dataset]


def held_out_count(num_combinations: int, paper_held_out: int, paper_total: int) -> int:
    """How many of ``num_combinations`` to hold out: the paper's fraction, at least 1, leaving 1 for training."""
    if num_combinations < 2:
        raise ValueError(
            f"a train/test split needs at least 2 combinations, the dataset has {num_combinations}"
        )
    return min(num_combinations - 1, max(1, round(paper_held_out / paper_total * num_combinations)))


def draw_test_combinations(
    combinations: Iterable[str], seed: int, paper_held_out: int, paper_total: int
) -> list[str]:
    """A seeded draw of held-out combinations (sorted), independent of the input order."""
    present = sorted(set(combinations))
    count = held_out_count(len(present), paper_held_out, paper_total)
    return sorted(random.Random(seed).sample(present, count))


def _read_split_file(split_file: Path, dataset: str, seed: int) -> tuple[list[str], int | None]:
    try:
        payload = json.loads(split_file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"split file '{split_file}' is unreadable ({error}); delete it to draw the split again"
        ) from error
    combos = payload.get("test_combinations") if isinstance(payload, dict) else None
    if not isinstance(combos, list) or not all(isinstance(c, str) for c in combos) or not combos:
        raise ValueError(
            f"split file '{split_file}' must hold a non-empty list of strings under 'test_combinations'"
        )
    if payload.get("dataset") != dataset:
        raise ValueError(
            f"split file '{split_file}' is for dataset {payload.get('dataset')!r}, not {dataset!r}; "
            "point split_file elsewhere or delete it"
        )
    if payload.get("seed") != seed:
        raise ValueError(
            f"split file '{split_file}' was drawn with seed {payload.get('seed')!r} but split_seed={seed}; "
            f"set split_seed={payload.get('seed')!r} to keep that split, or delete the file to draw a new one"
        )
    return combos, payload.get("num_combinations")


def load_or_draw_split(
    combinations: Iterable[str],
    split_file: str | Path,
    dataset: str,
    seed: int,
    paper_held_out: int,
    paper_total: int,
) -> set[str]:
    """The held-out combinations: read from ``split_file`` if it exists (and checked), else drawn and written.

    Raises ValueError naming the file if it lists combinations the dataset does not have,
    or was written for another dataset or seed.
    """
    split_file = Path(split_file)
    present = set(combinations)
    if split_file.exists():
        combos, recorded = _read_split_file(split_file, dataset, seed)
        unknown = sorted(set(combos) - present)
        if unknown:
            raise ValueError(
                f"split file '{split_file}' holds out {len(unknown)} combination(s) that the dataset does not "
                f"have: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}; is data.root the dataset the file "
                "was made for? Delete the file to draw a new split"
            )
        if recorded is not None and recorded != len(present):
            log.warning(
                "split file '%s' was drawn from %s combinations, the dataset now has %d; "
                "combinations not in the file are used for training",
                split_file, recorded, len(present),
            )
        return set(combos)
    test = draw_test_combinations(present, seed, paper_held_out, paper_total)
    payload = {
        "format": SPLIT_FORMAT,
        "dataset": dataset,
        "seed": seed,
        "num_combinations": len(present),
        "test_combinations": test,
    }
    split_file.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(payload, indent=1) + "\n").encode()
    atomic_write_bytes(split_file, data)
    log.info("wrote the %s split (%d of %d combinations held out) to '%s'", dataset, len(test), len(present), split_file)
    return set(test)
