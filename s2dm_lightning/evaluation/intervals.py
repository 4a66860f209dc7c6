"""Error bars in the ``test`` report, the features kept beside it, and the paired comparison of two reports.

Every run of the report gets the percentile-bootstrap interval of its FVD and KVD
(:func:`s2dm_lightning.metrics.bootstrap.bootstrap_fvd_kvd`: the real and the generated features already
extracted are resampled, nothing is generated again), with the confidence, the number of resamples and the
seed (``metrics.bootstrap_resamples``, ``metrics.bootstrap_seed``; 0 resamples = none).

Neither the report nor a real-statistics file holds the *generated* features, and the interval of a
difference between two reports needs them, so the callback writes them beside the report as
``<report stem>.features.safetensors`` (plain tensors, no pickle): ``real`` (n, d) and ``generated_run<k>``
(m, d) float64, with the report's real side in the file's metadata. :func:`compare_reports` reads two such
reports and gives the interval of FVD(A) - FVD(B) and KVD(A) - KVD(B)
(:func:`~s2dm_lightning.metrics.bootstrap.bootstrap_difference`: one real draw per resample shared by both).
Two reports compare only on the same real side: the same feature network (its SHA-256), the same real
features (the SHA-256 of the float64 tensor) and the same preset; otherwise :class:`RealSideMismatchError`
names every difference.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from s2dm_lightning.evaluation.features import FeatureBackbone
from s2dm_lightning.evaluation.stats_file import network_section
from s2dm_lightning.io import atomic_path
from s2dm_lightning.metrics.bootstrap import DEFAULT_RESAMPLES, bootstrap_difference, bootstrap_fvd_kvd
from s2dm_lightning.safe_load import load_safetensors

FEATURES_SUFFIX = ".features.safetensors"
#: What two reports must share to be compared (the keys of the report's ``real_side``).
REAL_SIDE_KEYS = ("feature_network", "real_features_sha256", "preset")
#: The default resamples of a ``test`` report (each costs an FVD of d x d matrices: 200 at d = 400 took 11 s with
#: 84 real and 2048 generated clips, 25 s with 2048 of each, on one CPU thread).
REPORT_RESAMPLES = 200
KVD_NOTE = ("the interval's KVD is the full-set unbiased MMD^2 (the report's KVD when metrics.kvd_subset_size is "
            "null; with subsets the interval is of the full-set value, its 'estimate')")


class RealSideMismatchError(ValueError):
    """Two reports scored against different real sides (feature network, real features or preset)."""


def features_path(report_path: str | os.PathLike) -> Path:
    """``DIR/report.json`` -> ``DIR/report.features.safetensors``."""
    path = Path(report_path)
    return path.with_name(path.stem + FEATURES_SUFFIX)


def tensor_sha256(features: torch.Tensor) -> str:
    """SHA-256 of the float64 values (the same tensor on any machine gives the same hash)."""
    return hashlib.sha256(features.detach().to(torch.float64).cpu().contiguous().numpy().tobytes()).hexdigest()


def real_side(real_features: torch.Tensor, backbone: FeatureBackbone, preset: str) -> dict[str, Any]:
    """The report's ``real_side``: what a compared report must share."""
    network = network_section(backbone)
    return {"feature_network": {"kind": network["kind"], "sha256": network["sha256"]},
            "real_features_sha256": tensor_sha256(real_features), "preset": preset,
            "num_real_videos": int(real_features.shape[0])}


def check_bootstrap_options(num_resamples: int, seed: int) -> None:
    if not isinstance(num_resamples, int) or num_resamples == 1 or num_resamples < 0:
        raise ValueError(f"metrics.bootstrap_resamples must be 0 (no intervals) or >= 2, got {num_resamples!r}")
    if not isinstance(seed, int):
        raise ValueError(f"metrics.bootstrap_seed must be an integer, got {seed!r}")


def run_intervals(real: torch.Tensor, generated: torch.Tensor, names: tuple[str, str], num_resamples: int,
                  seed: int, confidence: float = 0.95) -> dict[str, Any] | None:
    """The interval section of one run (None when ``num_resamples`` is 0)."""
    if num_resamples == 0:
        return None
    result = bootstrap_fvd_kvd(real, generated, num_resamples=num_resamples, seed=seed, confidence=confidence)
    fvd_name, kvd_name = names
    return {fvd_name: result["fvd"], kvd_name: result["kvd"], "confidence": result["confidence"],
            "num_resamples": num_resamples, "seed": seed, "method": result["method"], "kvd": KVD_NOTE}


def save_features(path: str | os.PathLike, real: torch.Tensor, generated: dict[int, torch.Tensor],
                  side: dict[str, Any]) -> Path:
    """Write the real and every run's generated features (float64) with the real side, atomically."""
    from safetensors.torch import save_file

    tensors = {"real": real.detach().to(torch.float64).cpu().contiguous()}
    for run, features in sorted(generated.items()):
        tensors[f"generated_run{run}"] = features.detach().to(torch.float64).cpu().contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"real_side": json.dumps(side, sort_keys=True)})
    return Path(path)


def _read_report(path: str | os.PathLike) -> dict[str, Any]:
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"report '{path}' is unreadable as JSON ({type(error).__name__}: {error})") from error
    if not isinstance(report, dict) or not isinstance(report.get("real_side"), dict):
        raise ValueError(f"report '{path}' has no 'real_side' section: it is not a test report of this version "
                         "(rerun `test` to write one with its features file)")
    return report


def _generated(report_path: Path, report: dict[str, Any], run: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The real features and those of ``run`` (None: the last run) from the report's features file."""
    file = report_path.parent / report.get("generated_features", {}).get("file", features_path(report_path).name)
    if not file.is_file():
        raise ValueError(f"report '{report_path}' has no features file '{file}' beside it (written by `test` "
                         "with the report; copy it along with the report)")
    tensors = load_safetensors(file, "features file")
    runs = sorted(int(key.removeprefix("generated_run")) for key in tensors if key.startswith("generated_run"))
    chosen = runs[-1] if run is None and runs else run
    if chosen not in runs:
        raise ValueError(f"features file '{file}' holds runs {runs}; run {run} is not among them")
    if tensor_sha256(tensors["real"]) != report["real_side"].get("real_features_sha256"):
        raise ValueError(f"features file '{file}' does not hold the real features its report '{report_path}' names "
                         "(real_features_sha256 differs): the two files come from different runs")
    return tensors["real"], tensors[f"generated_run{chosen}"], chosen


def real_side_differences(side_a: dict[str, Any], side_b: dict[str, Any]) -> list[str]:
    """``"<key>: <A> in A, <B> in B"`` for every key of :data:`REAL_SIDE_KEYS` that differs."""
    return [f"{key}: {side_a.get(key)!r} in A, {side_b.get(key)!r} in B"
            for key in REAL_SIDE_KEYS if side_a.get(key) != side_b.get(key)]


def compare_reports(report_a: str | os.PathLike, report_b: str | os.PathLike, run_a: int | None = None,
                    run_b: int | None = None, num_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                    confidence: float = 0.95, paired: bool = False) -> dict[str, Any]:
    """The bootstrap interval of FVD(A) - FVD(B) and KVD(A) - KVD(B) for two test reports on one real side.

    Args:
        report_a, report_b: ``evaluation_report.json`` files, each with its features file beside it.
        run_a, run_b: which run of each report (None: its last one).
        num_resamples, seed, confidence: of the bootstrap.
        paired: resample the two generated sets with the same indices (B made for the same conditions, in the
            same order, as A).

    Raises:
        RealSideMismatchError: another feature network, other real features or another preset (each named).
        ValueError: a report or its features file is missing or unreadable.
    """
    path_a, path_b = Path(report_a), Path(report_b)
    rep_a, rep_b = _read_report(path_a), _read_report(path_b)
    differences = real_side_differences(rep_a["real_side"], rep_b["real_side"])
    if differences:
        raise RealSideMismatchError(f"reports A='{path_a}' and B='{path_b}' were scored against different real sides "
                                    "and cannot be compared: " + "; ".join(differences))
    real, fake_a, chosen_a = _generated(path_a, rep_a, run_a)
    _, fake_b, chosen_b = _generated(path_b, rep_b, run_b)
    result = bootstrap_difference(real, fake_a, fake_b, num_resamples=num_resamples, seed=seed,
                                  confidence=confidence, paired=paired)
    return {"a": {"report": str(path_a), "run": chosen_a, "num_generated_videos": len(fake_a)},
            "b": {"report": str(path_b), "run": chosen_b, "num_generated_videos": len(fake_b)},
            "real_side": rep_a["real_side"], **result, "kvd": KVD_NOTE.replace("interval's", "difference's")}


def earlier_generated(path: str | os.PathLike, run: int, side: dict[str, Any]) -> dict[int, torch.Tensor]:
    """Runs 0..run-1 of an existing features file made on the same real side (``ddp_spawn`` starts fresh
    processes for every ``trainer.test``, so only the file on disk holds the earlier runs)."""
    path = Path(path)
    if run == 0 or not path.is_file():
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            if json.loads((handle.metadata() or {}).get("real_side", "null")) != side:
                return {}
            return {int(key.removeprefix("generated_run")): handle.get_tensor(key) for key in handle.keys()
                    if key.startswith("generated_run") and int(key.removeprefix("generated_run")) < run}
    except Exception:  # noqa: BLE001 - an unreadable old file: its runs are simply not kept
        return {}


def keep_features(report_path: str | os.PathLike, run: int, real: torch.Tensor, generated: torch.Tensor,
                  kept: dict[int, torch.Tensor], side: dict[str, Any]) -> dict[str, Any]:
    """Add ``run``'s generated features to ``kept`` (with earlier runs found on disk) and write them beside the
    report; returns ``side``."""
    path = features_path(report_path)
    for earlier, features in earlier_generated(path, run, side).items():
        kept.setdefault(earlier, features)
    kept[run] = generated.detach().cpu()
    save_features(path, real, kept, side)
    return side
