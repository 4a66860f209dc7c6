"""Real statistics as a shareable file (``metrics.real_stats_file``): compute them once, give them to others.

The file holds FVD's mean (d,), covariance (d, d) and count, KVD's (n, d) features, and a header saying
what they were made from: the protocol's real side (split, number of clips, frame selection and stride,
seed, frames per clip, resolution, resize), the feature network (its SHA-256 and preprocessing), the
dataset (data module and the SHA-256 of its real videos' ids, not their paths, so that the file is valid on
another machine) and the package version. It is written atomically with ``torch.save`` of plain tensors
and values and read with ``weights_only`` (no code runs). ``test`` uses it only when protocol, network and
dataset all match, and otherwise stops, naming every difference.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from s2dm_lightning.evaluation.features import FeatureBackbone
from s2dm_lightning.evaluation.real_stats import RealStatistics
from s2dm_lightning.evaluation.report import package_versions, utc_now
from s2dm_lightning.io import atomic_torch_save
from s2dm_lightning.safe_load import load_torch_data

STATS_FILE_KEY = "metrics.real_stats_file"
FORMAT = "s2dm-real-statistics/1"
#: The header sections a file must match (the package version and creation time are only recorded).
CHECKED_SECTIONS = ("protocol", "feature_network", "dataset")


class RealStatisticsMismatchError(ValueError):
    """A real-statistics file made under another protocol, feature network or dataset."""


def dataset_section(dataset: Any, datamodule: Any) -> dict[str, Any]:
    """The real videos as a portable identity: the data module's class and a hash of the clips' video ids."""
    records = getattr(dataset, "records", None)
    ids = [record.video_id for record in records] if records is not None else None
    return {"datamodule": type(datamodule).__name__ if datamodule is not None else None,
            "num_videos": len(ids) if ids is not None else len(dataset),
            "video_ids_sha256": hashlib.sha256(json.dumps(ids).encode()).hexdigest() if ids is not None else None}


def network_section(backbone: FeatureBackbone) -> dict[str, Any]:
    """The feature network: its SHA-256 (of the weight file, or of a module's weights) and its identity."""
    identity = backbone.identity
    return {"sha256": identity.get("sha256") or identity.get("fingerprint"), "kind": backbone.kind,
            "identity": identity}


def stats_header(protocol_real_side: dict[str, Any], backbone: FeatureBackbone, dataset: dict[str, Any]) -> dict:
    """The header of a real-statistics file made now."""
    return {"format": FORMAT, "protocol": protocol_real_side, "feature_network": network_section(backbone),
            "dataset": dataset, "package_version": package_versions().get("s2dm_lightning"), "created_at": utc_now()}


def save_stats_file(path: str | os.PathLike, header: dict[str, Any], stats: RealStatistics) -> Path:
    """Write the statistics with their header to ``path`` atomically (umask modes)."""
    return atomic_torch_save(path, {"header": header, **stats.to_payload()})


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}"))
        return out
    return {prefix: value}


def header_differences(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """``"<section.key>: <in the file> in the file, <here> here"`` for every checked value that differs."""
    differences = []
    for section in CHECKED_SECTIONS:
        theirs, ours = _flatten(found.get(section), section), _flatten(expected.get(section), section)
        for key in sorted(set(theirs) | set(ours)):
            if theirs.get(key) != ours.get(key):
                differences.append(f"{key}: {theirs.get(key)!r} in the file, {ours.get(key)!r} here")
    return differences


def load_stats_file(path: str | os.PathLike, expected: dict[str, Any]) -> RealStatistics:
    """The statistics of ``path`` if its header matches ``expected`` (protocol, network, dataset).

    Raises:
        RealStatisticsMismatchError: another protocol, network or dataset (each difference named), or not
            a real-statistics file.
        ReceivedFileError: the file cannot be read as pickle-free torch data.
    """
    payload = load_torch_data(path, STATS_FILE_KEY)
    header = payload.get("header") if isinstance(payload, dict) else None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RealStatisticsMismatchError(f"{STATS_FILE_KEY}='{path}' is not a real-statistics file ({FORMAT})")
    differences = header_differences(header, expected)
    if differences:
        raise RealStatisticsMismatchError(
            f"{STATS_FILE_KEY}='{path}' was made under another protocol, feature network or dataset "
            f"(package {header.get('package_version')}, {header.get('created_at')}): " + "; ".join(differences)
            + f". Use a file made with these settings, or point {STATS_FILE_KEY} at a new path to compute one"
        )
    return RealStatistics.from_payload(payload)
