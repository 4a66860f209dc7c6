"""The JSON evaluation report: what was computed, on what, with which network, seeds and config.

The file is valid JSON whose FIRST line holds the key ``notice``, one sentence saying what the numbers
are (FVD/KVD with the standard I3D, or "NOT FVD/KVD" for an untrained or custom feature network), so a
reader of ``head -1`` cannot mistake a smoke-test number for FVD. It is written atomically.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from s2dm_lightning.io import atomic_write_text
from s2dm_lightning.metrics.functional import STD_RULE, mean_std

#: The per-video seed rule of ``S2DM.test_step`` (see ``S2DM.evaluation_generators``).
S2DM_SEED_RULE = "video i of run k samples with torch.Generator().manual_seed(sampling_seed + 100003 * k + i)"


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def summarize_runs(runs: list[dict[str, Any]], metric_names: list[str]) -> dict[str, dict[str, Any]]:
    """Per metric: :func:`mean_std` over the runs, and the values."""
    summary = {}
    for name in metric_names:
        values = [float(run[name]) for run in runs if run.get(name) is not None]
        summary[name] = {**mean_std(values), "values": values}
    return summary


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that change the numbers."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "lightning", "torchmetrics", "s2dm_lightning"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: paths and other objects become strings, NaN/inf stay floats (JSON extension)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return to_jsonable(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def protocol_section(dataset: Any, protocol: dict[str, Any], kvd_subsets: int, kvd_subset_size: int | None,
                     real_dataset: Any = None) -> dict[str, Any]:
    """How the numbers were computed (the report's ``protocol``): the preset and its knobs
    (:func:`s2dm_lightning.evaluation.protocol.protocol_report`), then what they mean."""
    real = real_dataset if real_dataset is not None else dataset
    pixels = "generated videos quantized to uint8 levels like the real frames"
    if protocol.get("mp4_round_trip"):
        pixels = "generated videos written to H.264 mp4 (libx264, yuv420p) and read back, then quantized"
    return {
        **protocol,
        "generated": "one video per test item from the caption + flow of a test clip; the test clips are cycled "
                     "to N items and repetitions sample with new seeds (they fall in later batches)",
        "real": f"{len(real)} clips of the {protocol.get('real_split')} videos, frames {protocol.get('frames')}, "
                "resized like the conditions",
        "num_frames": getattr(real, "num_frames", None),
        "resolution": getattr(real, "resolution", None),
        "frame_sampling": getattr(real, "frame_sampling", "interval_first_frame"),
        "pixels": pixels,
        "fvd": "Frechet distance of Gaussians (unbiased covariances) fitted to the features",
        "kvd": {"estimator": "unbiased MMD^2", "kernel": "polynomial, degree 3, gamma 1/d, coef0 1",
                "subsets": kvd_subsets, "subset_size": kvd_subset_size},
        "std_over_runs": STD_RULE,
    }


def render_report(notice: str, body: dict[str, Any]) -> str:
    """JSON text whose first line is ``{"notice": "...",`` followed by ``body`` indented."""
    if not body:
        raise ValueError("the report body is empty")
    rest = json.dumps(to_jsonable(body), indent=2)
    return "{" + f'"notice": {json.dumps(notice)},' + rest[1:] + "\n"


def write_report(path: str | os.PathLike, notice: str, body: dict[str, Any]) -> Path:
    """Write the report to ``path`` atomically and return the path."""
    return atomic_write_text(path, render_report(notice, body))


def recover_earlier_runs(path: Path, run: int, kind: str, runs: dict[int, dict[str, Any]]) -> None:
    """Add to ``runs`` the runs 0..run-1 it lacks from the existing report (``ddp_spawn`` starts fresh
    processes for every ``trainer.test``, so only the report on disk holds the earlier runs)."""
    if run == 0 or all(k in runs for k in range(run)) or not path.is_file():
        return
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if previous.get("feature_extractor", {}).get("kind") != kind:
        return
    for item in previous.get("runs", []):
        if isinstance(item, dict) and isinstance(item.get("run"), int) and item["run"] < run:
            runs.setdefault(item["run"], item)
