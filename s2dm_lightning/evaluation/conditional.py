"""Conditional FVDs (LFDM's cFVD and sFVD): FVD within each class or each subject, averaged over the groups.

LFDM (Ni et al., CVPR 2023) reports, beside FVD over all videos, cFVD (FVD between the real and generated
videos of one class, an expression of MUG or an action of UTD-MHAD, averaged over the classes) and sFVD (the
same within each subject). Here each generated video belongs to the groups of the test video whose condition
it was made from, each real clip to those of its video; the groups come from the data module's
``video_groups(video_id) -> {"class": ..., "subject": ...}`` (MUG and UTD-MHAD have one). A group with fewer
than 2 videos on either side has no covariance and is left out of the average (the report lists it). The mean
is unweighted over the groups, as "averaged over groups" says; LFDM's code to check it against is not public.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from s2dm_lightning.metrics.functional import frechet_distance_from_features

#: Report name of each group's averaged FVD.
CONDITIONAL_NAMES = {"class": "cfvd", "subject": "sfvd"}


def grouped_fvd(real: torch.Tensor, real_labels: Sequence[str], fake: torch.Tensor,
                fake_labels: Sequence[str]) -> dict[str, Any]:
    """FVD within every label present on both sides, and their unweighted mean.

    Returns:
        ``{"value": mean over the scored groups (None if none), "groups": {label: fvd}, "left_out": {label:
        "n real, m generated"}}``.
    """
    if len(real_labels) != len(real) or len(fake_labels) != len(fake):
        raise ValueError(f"{len(real_labels)} real labels for {len(real)} real videos, {len(fake_labels)} generated "
                         f"labels for {len(fake)} generated videos: one label per video is needed")
    groups, left_out = {}, {}
    for label in sorted(set(real_labels) | set(fake_labels)):
        real_index = [i for i, lab in enumerate(real_labels) if lab == label]
        fake_index = [i for i, lab in enumerate(fake_labels) if lab == label]
        if min(len(real_index), len(fake_index)) < 2:
            left_out[label] = f"{len(real_index)} real, {len(fake_index)} generated"
            continue
        groups[label] = float(frechet_distance_from_features(real[real_index].double(), fake[fake_index].double()))
    value = sum(groups.values()) / len(groups) if groups else None
    return {"value": value, "groups": groups, "left_out": left_out}


def video_labels(datamodule: Any, video_ids: Sequence[str], group: str) -> list[str]:
    """The ``group`` label of every video id, from ``datamodule.video_groups``."""
    groups_of = getattr(datamodule, "video_groups", None)
    if not callable(groups_of):
        raise ValueError(f"metrics.conditional={group!r} needs a data module that knows each video's class and "
                         f"subject (a video_groups(video_id) method, as MUGDataModule and MHADDataModule have); "
                         f"{type(datamodule).__name__} has none")
    return [str(groups_of(video_id)[group]) for video_id in video_ids]


def clip_video_ids(dataset: Any) -> list[str]:
    """The video id of every item of a test or real-clip dataset, in its order."""
    plan = getattr(dataset, "plan", None)
    if plan is not None:  # a RealClipDataset: clip j comes from records[plan[j][0]]
        return [dataset.records[video].video_id for video, _ in plan]
    records = getattr(dataset, "records", None)
    if records is not None:
        return [record.video_id for record in records]
    return [dataset[i]["video_id"] for i in range(len(dataset))]  # a dataset without records: read its items


def conditional_fvds(groups: Sequence[str], datamodule: Any, real_clips: Any, test_dataset: Any,
                     real: torch.Tensor, generated: torch.Tensor, suffix: str) -> dict[str, Any]:
    """``{"cfvd<suffix>": grouped_fvd(...), "sfvd<suffix>": ...}`` for the asked ``groups``.

    Generated video i was made for the condition of test item ``i mod len(test_dataset)`` (the test set is
    cycled to N items, see ``data.num_test_videos``), in the order the features were gathered.
    """
    real_ids = clip_video_ids(real_clips)
    test_ids = clip_video_ids(test_dataset)
    fake_ids = [test_ids[i % len(test_ids)] for i in range(len(generated))]
    out = {}
    for group in groups:
        out[CONDITIONAL_NAMES[group] + suffix] = grouped_fvd(real, video_labels(datamodule, real_ids, group), generated,
                                                             video_labels(datamodule, fake_ids, group))
    return out
