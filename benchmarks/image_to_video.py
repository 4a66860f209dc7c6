"""Image-to-video on the synthetic test videos: given frame 1 and the real flows, how close is each method to the real video?

    python benchmarks/image_to_video.py --world default --data_root data/synthetic \
        --checkpoint s2dm=logs/synthetic/version_0/checkpoints/last.ckpt \
        [--checkpoint warped=a.ckpt --checkpoint warped=b.ckpt] [--seeds 0 1 2] [--output outputs/image_to_video_default]

Every test video of the world (``--world`` picks the data config: default = configs/synthetic.yaml,
disocclusion = configs/synthetic_disocclusion.yaml) gives the image (its frame 1, in [-1, 1]) and the
conditions (its flows and occlusion maps, as the dataset stores them). Rows:

* warp: frame 1 warped by each frame's flow (``flow_format.warp``); no model.
* random z_T (NAME): S2DM sampled as ``predict`` does (the model's steps, eta and guidance) from a
  random z_T; the image is not used (a reference-conditioned model gets no image, i.e. its reference
  dropped). Seed s, video k: ``sampling_seed + 100003 s + k``, as ``--n_runs`` run s.
* inversion N (+ k fixed-point) (NAME): frame 1 inverted to z_T by deterministic DDIM (eta = 0) with the
  model's unguided conditional prediction (caption and frame 1's flow, guidance scale 1), then the
  video sampled from that z_T (shared by the frames) with the same prediction, N steps, eta = 0, so
  frame 1 comes back. ``diffusion.ddim_inversion``; deterministic, so it runs once.
* reference FRAME|WARPED (NAME): a model trained with ``reference_condition`` frame or warped, sampled
  with ``image=`` frame 1 (only for checkpoints of such models).

Each checkpoint is read with the ``config.yaml`` LightningCLI saved beside its run. Measures per video:
PSNR (dB, [-1, 1] pixels, range 2) of frame 1, of frames 2-16 on pixels the occlusion map marks visible
in frame 1 and on the others (n/a in a world where no pixel is occluded)
(``metrics.functional_reconstruction``); the shape's centroid error against the real video (px) and
the change of the background where the real one is static, or, in a world with ground-truth flows
(a panning camera), along those flows where they carry the real content unchanged
(``synthetic.motion.background_change``). The table gives
mean +- std across checkpoints of one NAME when several are given (training seeds; each averaged
over the sampling seeds), else across sampling seeds. Writes OUTPUT.md (the table), OUTPUT.json
(per-video numbers) and OUTPUT.png (columns: given image | warp | inversion | reference | real; rows:
a few frames of a few videos).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler

from s2dm_lightning.commands.checkpoint_config import run_config_path
from s2dm_lightning.config import load_datamodule, load_module
from s2dm_lightning.diffusion import GuidanceSettings
from s2dm_lightning.diffusion.ddim_inversion import ddim_invert
from s2dm_lightning.flow_format import warp_reference
from s2dm_lightning.io import atomic_write_text
from s2dm_lightning.metrics.functional import mean_std
from s2dm_lightning.metrics.functional_reconstruction import image_to_video_psnr
from s2dm_lightning.models import S2DM
from s2dm_lightning.models.diffusion_module import evaluation_seeds
from s2dm_lightning.synthetic.motion import background_change, caption_color, track_errors
from s2dm_lightning.synthetic.world import read_ground_truth
from s2dm_lightning.video_files import write_png
from s2dm_lightning.visualization import contact_sheet, to_uint8_video

WORLD_CONFIGS = {"default": "configs/synthetic.yaml", "disocclusion": "configs/synthetic_disocclusion.yaml"}
MEASURES = {  # JSON key -> table column
    "psnr_first_frame": "frame 1 PSNR (dB)",
    "psnr_visible": "frames 2-16 visible PSNR (dB)",
    "psnr_occluded": "frames 2-16 occluded PSNR (dB)",
    "centroid_error_px": "centroid error (px)",
    "background_change": "background change",
}
Batch = dict[str, Any]
Method = Callable[[Batch, int, int], torch.Tensor]  # (batch, batch index, sampling seed) -> (B, F, 3, H, W)


def parse_checkpoint(value: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (NAME, PATH); the run's config.yaml must lie beside the checkpoints folder."""
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--checkpoint wants NAME=PATH, got {value!r}")
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"--checkpoint {name}: {path} does not exist")
    if not run_config_path(path).is_file():
        raise argparse.ArgumentTypeError(
            f"--checkpoint {name}: no {run_config_path(path)} (the config.yaml of the run that wrote {path})")
    return name, Path(path)


def reference_condition(model: S2DM) -> str:
    """The model's ``reference_condition`` (``none`` for models that predate it)."""
    return str(getattr(model.hparams, "reference_condition", "none"))


def warp_method(batch: Batch, batch_idx: int, seed: int) -> torch.Tensor:
    """Frame 1 warped by every frame's flow."""
    return warp_reference(batch["frames"][:, 0], batch["flow"])


def _generators(model: S2DM, batch: Batch, batch_idx: int, seed: int) -> list[torch.Generator]:
    seeds = evaluation_seeds(model.hparams.sampling_seed, seed, batch, batch_idx)
    return [torch.Generator().manual_seed(s) for s in seeds]


def without_reference(batch: Batch) -> Batch:
    """The batch without its frames: ``sample_videos`` would otherwise condition a reference model on frame 1."""
    return {key: value for key, value in batch.items() if key not in ("frames", "latent_mean", "latent_std")}


def random_method(model: S2DM) -> Method:
    """S2DM from a random z_T, as ``predict`` samples; no image (a reference model's reference dropped)."""
    return lambda batch, batch_idx, seed: model.sample_videos(without_reference(batch),
                                                              _generators(model, batch, batch_idx, seed))


def reference_method(model: S2DM) -> Method:
    """A reference-conditioned S2DM given frame 1."""
    def sample(batch: Batch, batch_idx: int, seed: int) -> torch.Tensor:
        image = batch["frames"][:, 0].to(model.device)
        return model.sample_videos(batch, _generators(model, batch, batch_idx, seed), image=image)
    return sample


def inversion_method(model: S2DM, steps: int, fixed_point_iterations: int, noise_sharing: str = "shared") -> Method:
    """Frame 1 -> z_T by DDIM inversion with the unguided conditional prediction, then sampled back (eta 0);
    ``warped``: z_T carried along each frame's flow (fresh seeded noise where disoccluded)."""
    sampling = model.sampling.replace(num_inference_steps=steps, eta=0.0, guidance=GuidanceSettings("joint", 1.0))

    def sample(batch: Batch, batch_idx: int, seed: int) -> torch.Tensor:
        first = model.encode_frames(batch["frames"][:, :1].to(model.device))
        denoise = model.make_denoiser(list(batch["caption"]), batch["flow"][:, :1], sampling.guidance)
        scheduler = DDIMScheduler.from_config(model.noise_scheduler.config)
        z_t = ddim_invert(denoise, first, scheduler, steps, fixed_point_iterations)[:, 0]
        return model.sample_videos(without_reference(batch), _generators(model, batch, batch_idx, seed),
                                   initial_noise=z_t, sampling=sampling, noise_sharing=noise_sharing)
    return sample


def score(generated: torch.Tensor, batch: Batch, truth_root: Path | None = None,
          by_color: bool = False) -> list[dict[str, float]]:
    """The measures of each video of a batch; visible/occluded pixels from the world's ground-truth
    occlusion maps when ``truth_root`` holds them (non-default worlds), else from the estimated ones;
    ``by_color``: track only the captioned shape's colour (a world where a second shape enters)."""
    real, flow = batch["frames"], batch["flow"]
    if truth_root is not None:
        flow = torch.stack([torch.from_numpy(read_ground_truth(truth_root, v))[indices]  # the clip's frames
                            for v, indices in zip(batch["video_id"], batch["frame_indices"], strict=True)])
    generated = generated.cpu().float()
    psnr = image_to_video_psnr(generated, real, flow)
    error, _ = track_errors(generated, real, [caption_color(c) for c in batch["caption"]] if by_color else None)
    change = background_change(generated, real, flow if truth_root is not None else None)
    return [{"psnr_first_frame": float(psnr["first_frame"][i]), "psnr_visible": float(psnr["visible"][i]),
             "psnr_occluded": float(psnr["occluded"][i]), "occluded_fraction": float(psnr["occluded_fraction"][i]),
             "centroid_error_px": float(error[i]), "background_change": float(change[i])}
            for i in range(len(real))]


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def summarize(per_video: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Row -> measure -> mean_std: across checkpoints of the row when several, else across sampling seeds.

    A run (checkpoint, seed) is first averaged over its videos (finite values; inf/NaN PSNRs are left out).
    """
    runs: dict[str, dict[tuple[str, Any], list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for item in per_video:
        runs[item["row"]][(item["checkpoint"], item["seed"])].append(item)
    table = {}
    for row, by_run in runs.items():
        run_means = {key: {m: _finite_mean([v[m] for v in videos]) for m in MEASURES} for key, videos in by_run.items()}
        checkpoints = sorted({ckpt for ckpt, _ in run_means})
        table[row] = {}
        for measure in MEASURES:
            if len(checkpoints) > 1:
                values = [_finite_mean([means[measure] for (c, _), means in run_means.items() if c == ckpt])
                          for ckpt in checkpoints]
            else:
                values = [means[measure] for means in run_means.values()]
            table[row][measure] = {**mean_std(values), "across": "checkpoints" if len(checkpoints) > 1 else "seeds"}
    return table


def markdown_table(table: dict[str, dict[str, Any]]) -> str:
    """One line per row; ``mean ± std (n)``, ``n/a`` where no video has a finite value."""
    lines = ["| method | " + " | ".join(MEASURES.values()) + " |", "|---" * (len(MEASURES) + 1) + "|"]
    for row, measures in table.items():
        cells = []
        for measure in MEASURES:
            stats = measures[measure]
            digits = 3 if measure == "background_change" else 2
            if stats["mean"] is None:
                cells.append("n/a")
            elif stats["std"] is None:
                cells.append(f"{stats['mean']:.{digits}f}")
            else:
                cells.append(f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f} ({stats['n']} {stats['across']})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sheet_image(batches: list[Batch], shown: dict[str, list[torch.Tensor]], num_videos: int,
                frames: list[int], scale: int) -> np.ndarray:
    """Rows (video, frame); columns: given image | each shown method | real (uint8 RGB)."""
    real = torch.cat([b["frames"] for b in batches])[:num_videos]
    ids = [v for b in batches for v in b["video_id"]][:num_videos]
    methods = {name: torch.cat(videos)[:num_videos] for name, videos in shown.items()}
    rows, labels = [], []
    for k in range(len(real)):
        for frame in frames:
            cells = [real[k, 0]] + [videos[k, frame] for videos in methods.values()] + [real[k, frame]]
            rows.append(to_uint8_video(torch.stack(cells)))
            kinds = [name.split()[0] for name in methods]  # warp, inversion, reference: full names in the table
            labels.append(f"{ids[k]} f{frame + 1}: image|" + "|".join(kinds) + "|real")
    return contact_sheet(rows, labels, scale=scale)


def sheet_columns(videos: dict[str, list[torch.Tensor]]) -> dict[str, list[torch.Tensor]]:
    """The contact sheet's methods: warp, the most refined inversion and the first reference-conditioned row."""
    inversions = [row for row in videos if row.startswith("inversion")]
    references = [row for row in videos if row.startswith("reference")]
    chosen = ["warp"] + inversions[-1:] + references[:1]
    return {row: videos[row] for row in chosen if row in videos}


def first_videos(batches: list[Batch], count: int) -> list[Batch]:
    """The batches cut to their first ``count`` videos."""
    kept: list[Batch] = []
    for batch in batches:
        left = count - sum(len(b["caption"]) for b in kept)
        if left <= 0:
            break
        kept.append({key: value[:left] for key, value in batch.items()})
    return kept


def load_test_batches(data_config: str, data_root: str | None, batch_size: int) -> list[Batch]:
    """Every test video of the config's data, in batches, with frames, flows and captions."""
    overrides: dict[str, Any] = {"batch_size": batch_size}
    if data_root is not None:
        overrides["root"] = data_root
    data = load_datamodule(data_config, **overrides)
    data.prepare_data()
    data.setup("test")
    return list(data.test_dataloader())


def build_methods(checkpoints: list[tuple[str, Path]], steps: int, fixed_point_iterations: list[int],
                  device: str, reference_only: set[str] = frozenset()) -> list[tuple[str, str, Method, bool]]:
    """(row, checkpoint, method, seeded) for warp and every checkpoint's rows.

    A reference model gives its reference row and, unless its name is in ``reference_only``, the
    no-image rows (random z_T, inversion) with its reference dropped; other models the no-image rows."""
    methods: list[tuple[str, str, Method, bool]] = [("warp", "", warp_method, False)]
    for name, path in checkpoints:
        model = load_module(run_config_path(path), path, S2DM, "--checkpoint").to(device)
        condition = reference_condition(model)
        dropped = ""
        if condition != "none":
            methods.append((f"reference {condition} ({name})", str(path), reference_method(model), True))
            if name in reference_only:
                continue
            dropped = ", reference dropped"
        methods.append((f"random z_T ({name}{dropped})", str(path), random_method(model), True))
        for iterations in fixed_point_iterations:
            refined = f" + {iterations} fixed-point" if iterations else ""
            methods.append((f"inversion {steps}{refined} ({name}{dropped})", str(path),
                            inversion_method(model, steps, iterations), False))
        methods.append((f"inversion {steps}, z_T transported ({name}{dropped})", str(path),
                        inversion_method(model, steps, 0, "warped"), True))
    return methods


def combine(paths: list[str], output: Path) -> None:
    """Write OUTPUT.md/.json from several runs' JSON; a row scored twice (e.g. warp) counts once."""
    reports = [json.loads(Path(path).read_text()) for path in paths]
    worlds = {report["world"] for report in reports}
    if len(worlds) != 1:
        raise SystemExit(f"--combine: the runs are of different worlds {sorted(worlds)}")
    unique = {(v["row"], v["checkpoint"], v["seed"], v["video_id"]): v for r in reports for v in r["per_video"]}
    per_video = list(unique.values())
    table = summarize(per_video)
    text = (f"Image-to-video, world {worlds.pop()}, {len({v['video_id'] for v in per_video})} test videos, "
            f"combined from {len(paths)} runs\n\n" + markdown_table(table))
    print(text)
    atomic_write_text(output.with_suffix(".md"), text)
    atomic_write_text(output.with_suffix(".json"), json.dumps(
        {"combined": paths, "summary": table, "per_video": per_video}, indent=2, allow_nan=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", choices=sorted(WORLD_CONFIGS), default="default")
    parser.add_argument("--data_config", default=None, help="the data config (default: the world's, see above)")
    parser.add_argument("--data_root", default=None, help="the world's dataset folder (default: its config's)")
    parser.add_argument("--checkpoint", type=parse_checkpoint, action="append", default=[], metavar="NAME=PATH",
                        help="an S2DM checkpoint; repeat a NAME for several training seeds of one method")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampling seeds (runs)")
    parser.add_argument("--inversion_steps", type=int, default=20)
    parser.add_argument("--fixed_point_iterations", type=int, nargs="+", default=[0, 2],
                        help="one inversion row per value (0: plain DDIM inversion)")
    parser.add_argument("--reference_only", nargs="*", default=[], metavar="NAME",
                        help="reference models of these names give only their reference row")
    parser.add_argument("--visibility", choices=["auto", "estimated", "ground_truth"], default="auto",
                        help="occlusion maps that split visible/occluded pixels in scoring "
                             "(auto: the world's ground truth where it has one)")
    parser.add_argument("--batch_size", type=int, default=4, help="videos per sampling call")
    parser.add_argument("--num_videos", type=int, default=None, help="only the first N test videos (smoke runs)")
    parser.add_argument("--sheet_videos", type=int, default=3)
    parser.add_argument("--sheet_frames", type=int, nargs="+", default=[2, 6, 11, 16], help="1-based")
    parser.add_argument("--scale", type=int, default=3, help="contact sheet upscaling")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--output", default=None, help="path prefix (default outputs/image_to_video_WORLD)")
    parser.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                        help="no sampling: one table from the per-video results of earlier runs (one world), "
                             "e.g. one run per training seed")
    args = parser.parse_args(argv)
    if args.combine:
        combine(args.combine, Path(args.output or f"outputs/image_to_video_{args.world}"))
        return
    torch.set_num_threads(args.threads)
    output = Path(args.output or f"outputs/image_to_video_{args.world}")
    start = time.time()
    batches = load_test_batches(args.data_config or WORLD_CONFIGS[args.world], args.data_root, args.batch_size)
    if args.num_videos is not None:
        batches = first_videos(batches, args.num_videos)
    methods = build_methods(args.checkpoint, args.inversion_steps, args.fixed_point_iterations, args.device,
                            set(args.reference_only))
    truth_root = None
    if args.visibility == "ground_truth" or (args.visibility == "auto" and args.world != "default"):
        truth_root = Path(args.data_root or load_datamodule(args.data_config or WORLD_CONFIGS[args.world]).root)
    per_video: list[dict[str, Any]] = []
    shown: dict[str, list[torch.Tensor]] = {}
    for row, checkpoint, method, seeded in methods:
        for seed in args.seeds if seeded else [None]:
            with torch.no_grad():
                for index, batch in enumerate(batches):
                    generated = method(batch, index, seed or 0).cpu().float()
                    for video_id, caption, values in zip(batch["video_id"], batch["caption"], score(generated, batch, truth_root, args.world != "default"),
                                                         strict=True):
                        per_video.append({"row": row, "checkpoint": checkpoint, "seed": seed, "video_id": video_id,
                                          "caption": caption, **values})
                    if seed in (None, args.seeds[0]):
                        shown.setdefault(row, []).append(generated)
            print(f"{row} seed {seed}: {time.time() - start:.0f} s", flush=True)
    table = summarize(per_video)
    text = (f"Image-to-video, world {args.world}, {len({v['video_id'] for v in per_video})} test videos, "
            f"sampling seeds {args.seeds}\n\n" + markdown_table(table))
    print(text)
    atomic_write_text(output.with_suffix(".md"), text)
    report = {"world": args.world, "data_root": args.data_root, "seeds": args.seeds,
              "checkpoints": [[name, str(path)] for name, path in args.checkpoint],
              "inversion_steps": args.inversion_steps, "fixed_point_iterations": args.fixed_point_iterations,
              "visibility": "ground_truth" if truth_root else "estimated",
              "summary": table, "per_video": per_video, "minutes": round((time.time() - start) / 60, 1)}
    atomic_write_text(output.with_suffix(".json"), json.dumps(report, indent=2, allow_nan=True))
    sheet = sheet_image(batches, sheet_columns(shown), args.sheet_videos, [f - 1 for f in args.sheet_frames], args.scale)
    write_png(output.with_suffix(".png"), sheet)
    print(f"wrote {output}.md, .json and .png")


if __name__ == "__main__":
    main()
