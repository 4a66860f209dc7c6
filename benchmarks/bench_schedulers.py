"""Fewer sampling steps with a multistep solver? DDIM vs DPM-Solver++ / UniPC on the synthetic test split.

    python benchmarks/bench_schedulers.py --ckpt logs/synthetic/version_0/checkpoints/last.ckpt \
        [--config logs/synthetic/version_0/config.yaml] [--seeds 0 1 2] [--output outputs/bench_schedulers.json]
    python benchmarks/bench_schedulers.py --merge a.json b.json   # one table from runs of different seeds

Every row samples ALL test clips (their captions and real flows) with the same z_T per seed (video k
of seed s: ``torch.Generator().manual_seed(SEED_STRIDE * s + k)``, as the ablation) and the config's
guidance; only the scheduler and its steps change. Scores are the project's own: the centroid error of
``benchmarks/synthetic_motion.py`` (``synthetic.motion.track_errors``) and the ablation's flow EPE,
flow-warping error and background drift (``metrics.FlowAdherence``, ``FlowWarpingError``,
``BackgroundDrift``, on uint8-quantised videos); each row is mean ± std over the seeds. Time: the
sampling seconds of a row / those of DDIM-20 in the same seed's run (one thread:
``torch.set_num_threads(1)``, so that other work on the machine disturbs the ratio less). Not a test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from s2dm_lightning.config import load_datamodule, load_module
from s2dm_lightning.evaluation.features import quantize_to_uint8_levels
from s2dm_lightning.io import atomic_write_text
from s2dm_lightning.metrics import BackgroundDrift, FlowAdherence, FlowWarpingError
from s2dm_lightning.metrics.functional import mean_std
from s2dm_lightning.models import S2DM
from s2dm_lightning.synthetic.ablation import SEED_STRIDE
from s2dm_lightning.synthetic.motion import track_errors

#: Row id -> (sampler label, scheduler class, its options, steps, eta (None: the config's)).
ROWS: dict[str, tuple[str, str, dict[str, Any], int, float | None]] = {
    "ddim20": ("DDIM, eta of the config", "DDIMScheduler", {}, 20, None),
    "ddim10": ("DDIM, eta of the config", "DDIMScheduler", {}, 10, None),
    "dpm10": ("DPM-Solver++ 2M (ODE)", "DPMSolverMultistepScheduler", {}, 10, 0.0),
    "dpm5": ("DPM-Solver++ 2M (ODE)", "DPMSolverMultistepScheduler", {}, 5, 0.0),
    "dpmsde10": ("DPM-Solver++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}, 10, 0.0),
    "dpmsde5": ("DPM-Solver++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}, 5, 0.0),
    "unipc10": ("UniPC bh2 (ODE)", "UniPCMultistepScheduler", {}, 10, 0.0),
    "unipc5": ("UniPC bh2 (ODE)", "UniPCMultistepScheduler", {}, 5, 0.0),
}
MEASURES = {"centroid_error_px": "centroid error (px) ↓", "flow_epe": "flow EPE (px) ↓",
            "warping_error": "warping error ↓", "drift": "background drift ↓"}
DIGITS = {"centroid_error_px": 3, "flow_epe": 3, "warping_error": 4, "drift": 4}


def score_row(model: S2DM, clips: Any, flow_settings: Any, row: str, seed: int, batch_size: int) -> dict[str, float]:
    """Sample every clip of ``clips`` with the row's scheduler and seed ``seed``; seconds and the four measures."""
    _, sampler, options, steps, eta = ROWS[row]
    sampling = model.sampling.replace(sampler=sampler, sampler_options=options, num_inference_steps=steps, eta=eta)
    metrics = {"flow_epe": FlowAdherence(flow_settings=flow_settings),
               "warping_error": FlowWarpingError(), "drift": BackgroundDrift()}
    generated, real, seconds = [], [], 0.0
    for batch in DataLoader(clips, batch_size=batch_size):
        generators = [torch.Generator().manual_seed(SEED_STRIDE * seed + int(k)) for k in batch["sample_index"]]
        start = time.perf_counter()
        videos = model.sample_videos(batch, generators, sampling=sampling)
        seconds += time.perf_counter() - start
        videos = quantize_to_uint8_levels(videos.cpu())
        for metric in metrics.values():
            metric.update(videos, batch["flow"])
        generated.append(videos)
        real.append(batch["frames"])
    error, _ = track_errors(torch.cat(generated), torch.cat(real))
    values = {name: float(metric.compute()) for name, metric in metrics.items()}
    return {"seconds": seconds, "centroid_error_px": float(error.nanmean()), **values}


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown: per row, time / DDIM-20 and each measure as mean ± std over the seeds; the last column
    says whether every measure (lower is better) is no worse than DDIM-20's mean + its seed-to-seed std."""
    lines = ["| sampler | steps | time / DDIM-20 | " + " | ".join(MEASURES.values()) + " | as good as DDIM-20 |",
             "|---|---|---|" + "---|" * (len(MEASURES) + 1)]
    reference = {name: mean_std([v[name] for v in results["ddim20"].values()]) for name in MEASURES}
    for row in [r for r in ROWS if results.get(r)]:
        per_seed = results[row]
        ratios = [per_seed[s]["seconds"] / results["ddim20"][s]["seconds"] for s in per_seed if s in results["ddim20"]]
        stats = {name: mean_std([v[name] for v in per_seed.values()]) for name in MEASURES}
        within = all(stats[n]["mean"] <= reference[n]["mean"] + (reference[n]["std"] or 0.0) for n in MEASURES)
        cells = [_cell(mean_std(ratios), 2), *(_cell(stats[name], DIGITS[name]) for name in MEASURES),
                 "yes" if within else "no"]
        lines.append(f"| {ROWS[row][0]} | {ROWS[row][3]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(stats: dict[str, Any], digits: int) -> str:
    std = "" if stats["std"] is None else f" ± {stats['std']:.{digits}f}"
    return f"{stats['mean']:.{digits}f}{std}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="logs/synthetic/version_0/config.yaml")
    parser.add_argument("--ckpt", default="logs/synthetic/version_0/checkpoints/last.ckpt")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--batch_size", type=int, default=20, help="videos per sampling call")
    parser.add_argument("--num_videos", type=int, default=None, help="only the first N test clips (default: all)")
    parser.add_argument("--output", default="outputs/bench_schedulers.json")
    parser.add_argument("--merge", nargs="+", help="print one table from these result files instead of sampling")
    args = parser.parse_args(argv)
    if args.merge:
        results: dict[str, dict[str, Any]] = {}
        for path in args.merge:
            for row, per_seed in json.loads(Path(path).read_text())["results"].items():
                results.setdefault(row, {}).update(per_seed)
        print(table(results))
        return
    if "ddim20" not in args.rows:
        raise ValueError("--rows must include ddim20 (the time reference)")
    torch.set_num_threads(1)
    model = load_module(args.config, args.ckpt, S2DM).eval()
    data = load_datamodule(args.config, batch_size=args.batch_size)
    data.prepare_data()
    data.setup("test")
    clips = data.datasets["test"]
    if args.num_videos is not None:
        clips = Subset(clips, range(min(args.num_videos, len(clips))))
    print(f"{len(clips)} of {len(data.datasets['test'])} test videos; config eta={model.sampling.eta}, "
          f"guidance {model.sampling.guidance}", flush=True)
    results: dict[str, dict[str, Any]] = {row: {} for row in args.rows}
    for seed in args.seeds:
        for row in args.rows:  # rows alternate within a seed, so slow phases of the machine hit all rows
            results[row][str(seed)] = score_row(model, clips, getattr(data, "flow_settings", None), row, seed,
                                                args.batch_size)
            print(f"seed {seed} {row}: {results[row][str(seed)]}", flush=True)
            report = {"config": args.config, "ckpt": args.ckpt, "num_videos": len(clips),
                      "rows": {r: ROWS[r] for r in args.rows},
                      "results": results}
            atomic_write_text(Path(args.output), json.dumps(report, indent=2))
    print(table(results))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
