"""The shared-noise and flow-fusion ablations: score a trained model, summarise seeds, tables and plots.

``benchmarks/ablation.py`` trains the models and calls :func:`evaluate_model` for every row; the
notebook ``notebooks/ablation.ipynb`` reads the JSON it writes with :func:`load_results` and shows it
with :func:`markdown_tables` and :func:`plot_results`. Every metric is lower-is-better:

* ``fvd`` / ``kvd``: against the real test clips, features of the synthetic feature network
  (:mod:`.features`; NOT the I3D, so not comparable with published FVD);
* ``warping_error``: :class:`~s2dm_lightning.metrics.FlowWarpingError` ([0, 1] intensity);
* ``flow_epe``: :class:`~s2dm_lightning.metrics.FlowAdherence` (pixels of the flow map);
* ``drift``: :class:`~s2dm_lightning.metrics.BackgroundDrift` ([0, 1] intensity);
* ``centroid_error``: the generated shape's centroid against the real one, frames 2..F (pixels;
  :func:`.motion.track_errors`);
* ``sticking``: :func:`.texture_sticking.texture_sticking`'s ratio on the pixels that are shape in both
  the real and the generated frame (below 1 the shape's detail moves with it, above 1 it stays on the
  screen); ``sticking_moving`` / ``sticking_still`` are its two errors.

The noise-transport study (issue #26, ``--mode transport``) pairs :data:`TRANSPORT_ROWS` in training
and sampling and shows :data:`TRANSPORT_METRICS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from s2dm_lightning.data.datasets import CyclicDataset
from s2dm_lightning.evaluation.features import quantize_to_uint8_levels
from s2dm_lightning.metrics import (
    BackgroundDrift,
    FlowAdherence,
    FlowWarpingError,
    FrechetVideoDistance,
    KernelVideoDistance,
)
from s2dm_lightning.metrics.functional import mean_std
from s2dm_lightning.synthetic.motion import caption_color, shape_mask, track_errors
from s2dm_lightning.synthetic.texture_sticking import texture_sticking

#: Metric keys, in table order, with their table headers.
METRICS: dict[str, str] = {
    "fvd": "FVD (synthetic net) ↓",
    "kvd": "KVD (synthetic net) ↓",
    "warping_error": "warping error ↓",
    "flow_epe": "flow EPE (px) ↓",
    "drift": "background drift ↓",
}
#: The paper's Table 2 rows: (id, noise sharing in training, noise sharing in sampling, label).
NOISE_ROWS: list[tuple[str, str, str, str]] = [
    ("I", "shared", "shared", "(I) S2DM: shared noise in training and sampling"),
    ("II", "shared", "independent", "(II) shared in training, independent in sampling"),
    ("III", "independent", "independent", "(III) standard: independent noise in both"),
]
#: The noise-transport study (issue #26): the same noise sharing in training and sampling, as Table 2
#: pairs (I) and (III). a = 0.5 is the midpoint of `partial` (half the variance from the carried noise,
#: correlation 0.5 between copied pixels) and the mean of the random-a training distribution.
TRANSPORT_ROWS: list[tuple[str, str, str, str]] = [
    ("I", "shared", "shared", "(I) S2DM: shared (static) noise"),
    ("W", "warped", "warped", "warped: frame 1's noise carried along the flow"),
    ("P0.5", "partial:0.5", "partial:0.5", "partial, a = 0.5"),
    ("P", "partial", "partial", "partial, a ~ U[0, 1] per video"),
    ("III", "independent", "independent", "(III) independent noise"),
]
#: Columns of the transport tables (keys of :data:`ALL_METRICS`).
TRANSPORT_METRICS: tuple[str, ...] = ("centroid_error", "flow_epe", "warping_error", "drift", "sticking", "fvd",
                                      "kvd")
#: Every scored metric: :data:`METRICS` and the motion measures, with their headers.
ALL_METRICS: dict[str, str] = {
    **METRICS,
    "centroid_error": "centroid error (px) ↓",
    "sticking": "texture sticking (moving / still) ↓",
    "sticking_moving": "sticking: moving error",
    "sticking_still": "sticking: still error",
}
FUSION_MODES: tuple[str, ...] = ("tokens", "concat", "both")
#: Reference rows under each table: section key -> label (see :func:`evaluate_real`).
REFERENCE_ROWS: dict[str, str] = {
    "real": "real test clips (reference)",
    "static": "real frame 1 held still (ignores the flow; reference)",
}
#: Seed of video k of evaluation seed s: ``SEED_STRIDE * s + k`` (the same for every row).
SEED_STRIDE = 1_000_003


def _consistency_metrics(flow_settings: Any) -> dict[str, Any]:
    return {"warping_error": FlowWarpingError(), "flow_epe": FlowAdherence(flow_settings=flow_settings),
            "drift": BackgroundDrift()}


def motion_scores(videos: torch.Tensor, real: torch.Tensor, flow: torch.Tensor, captions: list[str],
                  world: str = "default") -> dict[str, float]:
    """Centroid error and texture sticking of (B, F, 3, H, W) videos against the real clips and their flows.

    In the disocclusion world only the caption colour's pixels are the shape (a second shape enters).
    """
    colors = [caption_color(c) for c in captions] if world == "disocclusion" else None
    error, _ = track_errors(videos, real, colors)
    mask = shape_mask(real, colors=colors) & shape_mask(videos, colors=colors)
    try:
        sticking = texture_sticking(videos, flow, mask)
    except ValueError:  # no generated shape pixel where the real shape is
        sticking = {"ratio": float("nan"), "moving_error": float("nan"), "sticking_error": float("nan")}
    return {"centroid_error": float(error.nanmean()), "sticking": sticking["ratio"],
            "sticking_moving": sticking["moving_error"], "sticking_still": sticking["sticking_error"]}


def _feature_metrics(extractor: nn.Module) -> dict[str, Any]:
    dim = int(getattr(extractor, "num_features", 0)) or None
    if dim is None:  # a TorchScript module may not expose it: ask the network
        dim = int(extractor(torch.zeros(1, 2, 3, 16, 16)).shape[1])
    return {"fvd": FrechetVideoDistance(feature_extractor=extractor, feature_dim=dim),
            "kvd": KernelVideoDistance(feature_extractor=extractor)}


@torch.no_grad()
def evaluate_model(
    model: Any,
    datamodule: Any,
    extractor: nn.Module,
    noise_sharing: str,
    num_videos: int,
    seed: int,
    batch_size: int = 8,
) -> dict[str, float]:
    """Sample ``num_videos`` videos for the test split's conditions and score them.

    The test clips are cycled to ``num_videos`` items (each clip's conditions several times, with
    different seeds); video k is sampled with ``torch.Generator().manual_seed(SEED_STRIDE * seed + k)``,
    so every row sees the same z_T draws. The real side of FVD/KVD is every test clip once.

    Args:
        model: a trained :class:`~s2dm_lightning.models.S2DM` (eval mode is set here).
        datamodule: its data module, ``setup("test")`` done (``datasets["test"]``, ``flow_settings``).
        extractor: the feature network, (B, F, 3, H, W) in [-1, 1] -> (B, d).
        noise_sharing: ``shared`` or ``independent`` sampling.
        num_videos: generated videos (>= 2).
        seed: evaluation seed.
        batch_size: videos per sampling call.

    Returns:
        ``{metric: value}`` for the keys of :data:`ALL_METRICS`, plus ``num_videos`` and ``num_real_videos``.
    """
    if num_videos < 2:
        raise ValueError(f"num_videos must be >= 2 (FVD needs two samples), got {num_videos}")
    test = datamodule.datasets["test"]
    if len(test) < 2:
        raise ValueError(f"the test split has {len(test)} clips; FVD needs at least 2")
    model.eval()
    feature = _feature_metrics(extractor)
    consistency = _consistency_metrics(getattr(datamodule, "flow_settings", None))
    for batch in DataLoader(test, batch_size=batch_size):
        for metric in feature.values():
            metric.update(batch["frames"], real=True)
    loader = DataLoader(CyclicDataset(test, num_videos), batch_size=batch_size)
    kept: dict[str, list] = {"videos": [], "real": [], "flow": [], "caption": []}
    for batch in loader:
        generators = [torch.Generator().manual_seed(SEED_STRIDE * seed + int(k)) for k in batch["sample_index"]]
        batch = {**batch, "flow": batch["flow"].to(model.device)}
        videos = quantize_to_uint8_levels(model.sample_videos(batch, generators, noise_sharing=noise_sharing).cpu())
        for metric in feature.values():
            metric.update(videos, real=False)
        for metric in consistency.values():
            metric.update(videos, batch["flow"].cpu())
        for name, value in (("videos", videos), ("real", batch["frames"]), ("flow", batch["flow"].cpu())):
            kept[name].append(value)
        kept["caption"] += list(batch["caption"])
    values = {"fvd": float(feature["fvd"].compute()), "kvd": float(feature["kvd"].compute()[0])}
    values.update({name: float(metric.compute()) for name, metric in consistency.items()})
    values.update(motion_scores(*(torch.cat(kept[k]) for k in ("videos", "real", "flow")), kept["caption"],
                                getattr(datamodule, "world", "default")))
    return {**values, "num_videos": num_videos, "num_real_videos": len(test)}


def evaluate_real(datamodule: Any, hold_first_frame: bool = False) -> dict[str, float]:
    """The consistency metrics of the real test clips with their own flows.

    As they are: what the estimator and the data allow (the floor for flow EPE and warping error; drift
    of the real background). With ``hold_first_frame``, every frame replaced by the clip's first: what a
    model that ignores the flow scores (EPE = the flows' own length, the warping error of the motion
    missed, zero drift).
    """
    consistency = _consistency_metrics(getattr(datamodule, "flow_settings", None))
    kept: dict[str, list] = {"videos": [], "real": [], "flow": [], "caption": []}
    for batch in DataLoader(datamodule.datasets["test"], batch_size=8):
        frames = batch["frames"]
        if hold_first_frame:
            frames = frames[:, :1].expand_as(frames)
        for metric in consistency.values():
            metric.update(frames, batch["flow"])
        for name, value in (("videos", frames), ("real", batch["frames"]), ("flow", batch["flow"])):
            kept[name].append(value)
        kept["caption"] += list(batch["caption"])
    values = {name: float(metric.compute()) for name, metric in consistency.items()}
    values.update(motion_scores(*(torch.cat(kept[k]) for k in ("videos", "real", "flow")), kept["caption"],
                                getattr(datamodule, "world", "default")))
    return values


def summarize_row(per_seed: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Per metric of :data:`ALL_METRICS`: mean and std over the seeds of one table row (None where unscored)."""
    return {name: mean_std([values.get(name) for values in per_seed.values()]) for name in ALL_METRICS}


def _cell(stats: dict[str, Any] | None, digits: int = 4) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    text = f"{stats['mean']:.{digits}g}"
    return text + (f" ± {stats['std']:.2g}" if stats.get("std") is not None else "")


def section_metrics(section: dict[str, Any]) -> list[str]:
    """The metric columns of a section: its own ``metrics`` list (transport tables), else :data:`METRICS`."""
    return list(section.get("metrics") or METRICS)


def markdown_table(section: dict[str, Any]) -> str:
    """A Markdown table of one section of the results (``noise``, ``fusion`` or a transport table).

    A section whose rows state their training budget (``max_steps``) gets a ``steps`` column and one
    with the number of seeds scored (``n``), so a partly finished table says which cells are missing.
    """
    metrics = section_metrics(section)
    budget = any("max_steps" in row for row in section.get("rows", []))
    header = ["setting", *(["steps", "seeds"] if budget else []), *(ALL_METRICS[m] for m in metrics)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in section.get("rows", []):
        summary = row.get("summary") or summarize_row(row.get("per_seed", {}))
        extra = [str(row.get("max_steps", "–")), str(len(row.get("per_seed", {})))] if budget else []
        lines.append("| " + " | ".join([row["label"], *extra, *(_cell(summary.get(m)) for m in metrics)]) + " |")
    for key, label in REFERENCE_ROWS.items():
        if section.get(key):
            cells = [_cell(mean_std([section[key].get(m)])) if m in section[key] else "–" for m in metrics]
            lines.append("| " + " | ".join([label, *(["–", "–"] if budget else []), *cells]) + " |")
    return "\n".join(lines)


def section_keys(results: dict[str, Any]) -> list[str]:
    """The table sections of a results dict, in order: ``noise``, ``fusion``, then transport tables."""
    return [key for key, value in results.items() if isinstance(value, dict) and "rows" in value]


def compute_minutes(results: dict[str, Any]) -> tuple[float, float]:
    """Minutes of training and of sampling + scoring behind the tables, reused runs and scores included."""
    train = sum(run.get("train_seconds") or 0.0 for run in results.get("runs", {}).values())
    scored: dict[tuple, float] = {}  # the noise table's row I and the fusion table's row `both` are one scoring
    for key in section_keys(results):
        for row in results[key].get("rows", []):
            for seed, values in row.get("per_seed", {}).items():
                sampling = (row.get("train_noise"), row.get("fusion"), row.get("sample_noise"), seed,
                            row.get("max_steps"))
                scored[sampling] = values.get("eval_seconds") or 0.0
    return train / 60, sum(scored.values()) / 60


def markdown_report(results: dict[str, Any] | None) -> str:
    """The whole Markdown report: settings, command, seeds, wall time and one table per section."""
    if not results:
        return "*No ablation results yet: run `make ablation` (or `python benchmarks/ablation.py --smoke`).*\n"
    settings = results.get("settings", {})
    feature = results.get("feature_network", {})
    train_minutes, scoring_minutes = compute_minutes(results)
    out = [f"# S2DM ablation ({'SMOKE RUN, tiny budgets: not a result' if settings.get('smoke') else 'synthetic data'})",
           "", f"Command: `{results.get('command', '?')}`",
           f"Seeds: {settings.get('seeds')} (training seed_everything = evaluation seed); "
           f"max_steps {settings.get('max_steps')}; {settings.get('num_videos')} generated videos per row and seed; "
           f"wall time of the last command {results.get('wall_time_s', float('nan')) / 60:.1f} min on "
           f"{results.get('machine', '?')}; the runs behind the tables took {train_minutes:.0f} min "
           f"of training and {scoring_minutes:.0f} min of sampling and scoring.",
           f"Feature network for FVD/KVD: `{feature.get('path')}` (test accuracy "
           f"{feature.get('test_accuracy', 'n/a')}); NOT the I3D: not comparable with published FVD.",
           "Values: mean ± sample std over seeds; all lower is better."]
    titles = {"noise": "Shared noise (paper Table 2)", "fusion": "Flow fusion modes (shared noise)"}
    for key in section_keys(results):
        title = results[key].get("title") or titles.get(key, key)
        if results.get(key):
            out += ["", f"## {title}", ""]
            if results[key].get("command"):  # tables may come from different commands into one output_dir
                out += [f"Command: `{results[key]['command']}`; seeds {results[key].get('seeds')}.", ""]
            out += [markdown_table(results[key])]
            if results[key].get("metrics"):  # the transport tables: every seed's values too
                out += ["", "Per seed:", "", per_seed_markdown(results, key)]
    return "\n".join(out) + "\n"


def per_seed_markdown(results: dict[str, Any] | None, section: str = "noise") -> str:
    """A Markdown table of the raw per-seed values of one section (one line per row and seed)."""
    if not results or not results.get(section):
        return f"*No '{section}' results.*"
    metrics = section_metrics(results[section])
    lines = ["| row | seed | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 2)]
    for row in results[section]["rows"]:
        for seed, values in row.get("per_seed", {}).items():
            cells = [f"{values[m]:.4g}" if values.get(m) is not None else "–" for m in metrics]
            lines.append(f"| {row['id']} | {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_results(path: str | Path) -> dict[str, Any] | None:
    """The JSON written by ``benchmarks/ablation.py``, or None (with a message saying how to make it)."""
    path = Path(path)
    if not path.is_file():
        print(f"No ablation results at '{path}'. Make them with `make ablation` "
              "(or `python benchmarks/ablation.py --smoke` for a quick look at the pipeline).")
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        print(f"'{path}' is not valid JSON ({error}); rerun benchmarks/ablation.py")
        return None


def plot_results(results: dict[str, Any] | None, section: str = "noise"):
    """Bar charts (mean ± std over seeds) of every metric of one section; None without results."""
    if not results or not results.get(section):
        print(f"no '{section}' results to plot")
        return None
    import matplotlib.pyplot as plt

    rows = results[section]["rows"]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.2))
    for ax, (name, title) in zip(axes, METRICS.items(), strict=True):
        stats = [(row.get("summary") or summarize_row(row["per_seed"]))[name] for row in rows]
        means = [s["mean"] if s["mean"] is not None else float("nan") for s in stats]
        errors = [s["std"] or 0.0 for s in stats]
        ax.bar([row["id"] for row in rows], means, yerr=errors, capsize=4, color="#4c72b0")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
