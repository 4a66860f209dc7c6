"""The body of ``test``'s JSON report (:mod:`.report` writes it): metrics, runs with their bootstrap intervals,
the real side that :func:`s2dm_lightning.evaluation.intervals.compare_reports` checks, seeds, network, protocol,
data and versions."""

from __future__ import annotations

import os
from typing import Any

import lightning.pytorch as pl

from s2dm_lightning.evaluation.conditional import CONDITIONAL_NAMES
from s2dm_lightning.evaluation.intervals import features_path
from s2dm_lightning.evaluation.report import (
    S2DM_SEED_RULE,
    package_versions,
    protocol_section,
    summarize_runs,
    utc_now,
)


def data_section(datamodule: Any) -> dict[str, Any]:
    """The data module's class, root folder and batch size."""
    return {"datamodule": type(datamodule).__name__ if datamodule is not None else None,
            "root": os.path.abspath(datamodule.root) if hasattr(datamodule, "root") else None,
            "batch_size": getattr(datamodule, "batch_size", None)}


def build_test_report(callback: Any, trainer: pl.Trainer, pl_module: pl.LightningModule, state: dict[str, Any],
                     runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of ``callback`` (a :class:`~s2dm_lightning.evaluation.VideoMetricsCallback`) after ``runs``."""
    names = list(callback.metric_names())
    summary = summarize_runs(runs, names)
    dataset, real, backbone = state["dataset"], state["real"], callback.backbone
    hparams = getattr(pl_module, "hparams", {}) or {}
    config = callback.run_config or {}
    conditional = [CONDITIONAL_NAMES[group] + backbone.metric_suffix for group in callback.protocol.conditional]
    return {
        "metrics": {name: summary[name]["mean"] for name in names},
        # cFVD / sFVD: the mean over runs of each run's average over groups (runs[k][name] has every group)
        "conditional_metrics": {name: summarize_runs([{name: run[name]["value"]} for run in runs], [name])[name]
                                for name in conditional},
        "metrics_std_over_runs": {name: summary[name]["std"] for name in names},
        "is_fvd": backbone.is_fvd,
        "n_runs": callback.n_runs,
        "runs_completed": len(runs),
        "runs": runs,
        "summary": summary,
        "num_generated_videos": runs[-1]["num_generated_videos"],
        "num_real_videos": real.num_samples,
        "real_side": state["real_side"],
        "bootstrap": {"num_resamples": callback.bootstrap_resamples, "seed": callback.bootstrap_seed,
                      "confidence": 0.95, "where": "runs[k].intervals: per metric estimate, low, high, std over "
                                                   "the resamples (null when num_resamples is 0)"},
        "generated_features": {"file": features_path(state["report_path"]).name,
                               "runs": sorted(callback._generated),
                               "content": "safetensors: real (n, d) and generated_run<k> (m, d), float64"},
        "seeds": {
            "sampling_seed": hparams.get("sampling_seed"),
            "evaluation_runs": [run["run"] for run in runs],
            "rule": S2DM_SEED_RULE if hasattr(pl_module, "evaluation_generators") else None,
            "seed_everything": config.get("seed_everything"),
            "kvd_subset_seed": callback.kvd_seed,
        },
        "checkpoint": trainer.ckpt_path,
        "feature_extractor": {"kind": backbone.kind, **backbone.identity},
        "weights": backbone.weights,
        "protocol": protocol_section(dataset, callback._protocol_info(), callback.kvd_subsets,
                                     callback.kvd_subset_size, state["real_clips"]),
        "real_statistics": {"num_videos": real.num_samples, **state["real_info"]},
        "data": data_section(trainer.datamodule),
        "world_size": trainer.world_size,
        "config": callback.run_config,
        "versions": package_versions(),
        "started_at": runs[0]["started_at"],
        "finished_at": utc_now(),
    }
