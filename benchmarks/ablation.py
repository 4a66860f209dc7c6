"""The shared-noise ablation (paper Table 2) and the flow-fusion comparison on the synthetic data.

    python benchmarks/ablation.py                     # both tables, 3 seeds, the config's budget
    python benchmarks/ablation.py --mode noise --seeds 0 1 2 --max_steps 1200 --num_videos 64
    python benchmarks/ablation.py --smoke             # every step with tiny budgets (about 2 minutes)
    python benchmarks/ablation.py --mode transport --world textured --max_steps 400 --jobs 2

Noise: with the same seed, steps and budget, train (I) shared and (III) independent noise through the
real CLI (``python -m s2dm_lightning fit --config <run>/config.yaml`` in a subprocess; the config is
``--config`` with the run's settings written in), then sample the test conditions with fixed seeds:
(I) shared-trained / shared sampling, (II) shared-trained / independent sampling, (III) independent /
independent. Fusion: ``tokens`` (paper), ``concat`` and ``both``, shared noise, same budget. Every
row is scored with FVD and KVD (features of the synthetic feature network, trained first if its file
is missing), flow-warping error, flow adherence (EPE) and background drift, per seed, then mean ±
std over seeds. Two reference rows: the real test clips with their own flows (the floor of the
consistency metrics) and their first frame held still (what a model ignoring the flow scores).
Writes ``<output_dir>/results.json`` (raw per-seed values, for the notebook) and ``results.md``
(the tables, the command, seeds and wall time). Finished training runs are reused
when their config is unchanged, so an interrupted ablation resumes.

Transport (issue #26, docs/noise_transport.md): the rows of ``TRANSPORT_ROWS`` (shared, warped,
partial at a = 0.5 and at random a, independent; the same sharing in training and sampling) on one
``--world`` (its config: ``configs/synthetic.yaml``, ``synthetic_disocclusion.yaml`` or
``synthetic_textured.yaml``), scored also by centroid error and texture sticking. Each world and
budget is its own table (``transport_<world>_steps<N>``); ``--rows`` picks some of its rows (e.g. a
full-budget pair ``--rows I W --max_steps 1200``) and tables of other commands in the same
``--output_dir`` are kept. With ``--jobs`` > 1 every (run, seed) is trained and then scored in its own
worker, seed by seed, so the rows of seed 0 finish first.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import yaml

from s2dm_lightning.config import load_datamodule, load_module
from s2dm_lightning.evaluation.report import to_jsonable, utc_now
from s2dm_lightning.io import atomic_write_text
from s2dm_lightning.models.s2dm import S2DM
from s2dm_lightning.synthetic.ablation import (
    FUSION_MODES,
    NOISE_ROWS,
    TRANSPORT_METRICS,
    TRANSPORT_ROWS,
    evaluate_model,
    evaluate_real,
    load_results,
    markdown_report,
    section_keys,
    summarize_row,
)
from s2dm_lightning.synthetic.features import load_feature_extractor, metadata_path

REPO = Path(__file__).resolve().parents[1]
SMOKE = {"max_steps": 2, "seeds": [0], "num_videos": 2, "feature_max_steps": 2}
WORLD_CONFIGS = {"default": "configs/synthetic.yaml", "disocclusion": "configs/synthetic_disocclusion.yaml",
                 "textured": "configs/synthetic_textured.yaml"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["noise", "fusion", "all", "transport"], default="all",
                   help="which table(s); transport: the noise-transport study (issue #26), not part of all")
    p.add_argument("--world", choices=sorted(WORLD_CONFIGS), default=None,
                   help="synthetic world, i.e. its config (default: default); not with --config")
    p.add_argument("--config", default=None, help="the S2DM training config (default configs/synthetic.yaml)")
    p.add_argument("--rows", nargs="+", default=None, choices=[r[0] for r in TRANSPORT_ROWS],
                   help="transport rows to run (default: all)")
    p.add_argument("--max_steps", type=int, default=None, help="training steps per run (default: the config's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training and evaluation seeds")
    p.add_argument("--num_videos", type=int, default=64, help="generated videos per row and seed")
    p.add_argument("--output_dir", default="outputs/ablation")
    p.add_argument("--data_root", default=None, help="synthetic dataset folder (default: the config's)")
    p.add_argument("--feature_network", default=None,
                   help="feature network, safetensors (default <output_dir>/synthetic_features.safetensors; trained if missing)")
    p.add_argument("--feature_config", default="configs/synthetic_features.yaml")
    p.add_argument("--feature_max_steps", type=int, default=None, help="feature network steps (default: its config's)")
    p.add_argument("--batch_size", type=int, default=8, help="videos per sampling call")
    p.add_argument("--jobs", type=int, default=1,
                   help="trainings of a seed run at once, each with cpu_count / jobs torch threads (on the "
                        "2-core CPU one 2-thread training is 1.8x faster than a 1-thread one: little to gain there)")
    p.add_argument("--smoke", action="store_true", help="tiny budgets and data: checks the pipeline, not a result")
    args = p.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    if args.num_videos < 2:
        p.error("--num_videos must be >= 2")
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    if args.world and args.config:
        p.error("give --world or --config, not both")
    if args.rows and args.mode != "transport":
        p.error("--rows is for --mode transport")
    args.config = args.config or WORLD_CONFIGS[args.world or "default"]
    return args


def _find_callback(callbacks: list[dict], suffix: str) -> dict | None:
    return next((c for c in callbacks if str(c.get("class_path", "")).endswith(suffix)), None)


def run_config(base: dict, run_dir: Path, *, noise: str, fusion: str, seed: int, max_steps: int,
               data_root: str | None, smoke: bool) -> dict:
    """The base config with one run's settings: noise sharing, fusion, seed, budget, output folders."""
    cfg = copy.deepcopy(base)
    cfg["seed_everything"] = seed
    trainer = cfg.setdefault("trainer", {})
    trainer["max_steps"] = max_steps
    trainer["default_root_dir"] = str(run_dir)
    trainer["val_check_interval"] = min(int(trainer.get("val_check_interval") or max_steps), max_steps)
    logger = trainer.get("logger")
    if isinstance(logger, dict):
        logger.setdefault("init_args", {}).update(save_dir=str(run_dir / "logs"), name="train")
    callbacks = trainer.get("callbacks") or []
    checkpoint = _find_callback(callbacks, "ModelCheckpoint")
    if checkpoint is not None:  # last.ckpt exactly at the final step
        checkpoint.setdefault("init_args", {})["every_n_train_steps"] = max_steps
    ema = _find_callback(callbacks, "EMAWeightAveraging")
    if ema is not None:  # a budget shorter than the EMA start would sample the untrained weights
        args = ema.setdefault("init_args", {})
        args["update_starting_at_step"] = min(int(args.get("update_starting_at_step", 0)), max_steps // 2)
    writer = _find_callback(callbacks, "VideoPredictionWriter")
    if writer is not None:
        writer.setdefault("init_args", {})["output_dir"] = str(run_dir / "predict")
    model = cfg["model"]["init_args"]
    model.update(noise_sharing=noise, sample_noise_sharing=noise, flow_fusion=fusion)
    unet = model.get("unet", {}).get("init_args")
    if unet is not None:  # 3 RGB channels (+ 3 flow channels for spatial injection)
        unet["in_channels"] = 3 + (3 if fusion in ("concat", "both") else 0)
    trainer["enable_progress_bar"] = False  # train.log stays readable; the loss is in TensorBoard
    data = cfg["data"].setdefault("init_args", {})
    if data_root:
        data["root"] = data_root
    if smoke:
        data.update(num_videos=12, frames_per_video=16, batch_size=2, val_videos=1)
        model["num_inference_steps"] = 2
        trainer["limit_val_batches"] = 1
        sampler = _find_callback(callbacks, "SampleVideosCallback")
        if sampler is not None:
            sampler.setdefault("init_args", {})["num_videos"] = 1
    return cfg


def train(name: str, cfg: dict, threads: int | None = None) -> dict:
    """Train one run through the CLI in a subprocess, or reuse it if it finished with the same config.

    ``threads``: torch threads of the subprocess (OMP_NUM_THREADS); None = inherit.
    """
    run_dir = Path(cfg["trainer"]["default_root_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path, done_path = run_dir / "config.yaml", run_dir / "done.json"
    text = yaml.safe_dump(cfg, sort_keys=False)
    if done_path.is_file() and config_path.is_file() and config_path.read_text() == text:
        done = json.loads(done_path.read_text())
        if Path(done["checkpoint"]).is_file():
            print(f"[{name}] reusing the finished run in {run_dir}", flush=True)
            return done
    done_path.unlink(missing_ok=True)
    atomic_write_text(config_path, text)
    command = [sys.executable, "-m", "s2dm_lightning", "fit", "--config", str(config_path)]
    print(f"[{name}] training: {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    with open(run_dir / "train.log", "w") as log:
        result = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        tail = (run_dir / "train.log").read_text()[-3000:]
        raise RuntimeError(f"[{name}] training failed (exit {result.returncode}); log {run_dir / 'train.log'}:\n{tail}")
    checkpoints = sorted((run_dir / "logs").rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not checkpoints:
        raise RuntimeError(f"[{name}] training wrote no last.ckpt under {run_dir / 'logs'}")
    done = {"name": name, "checkpoint": str(checkpoints[-1]), "train_seconds": seconds,
            "command": shlex.join(command), "finished_at": utc_now()}
    atomic_write_text(done_path, json.dumps(done, indent=2) + "\n")
    print(f"[{name}] trained in {seconds / 60:.1f} min", flush=True)
    return done


def load_trained(run: dict, cfg_path: Path):
    """The model (checkpoint weights: EMA when the run used it, as ``predict`` loads them) and its data."""
    model = load_module(cfg_path, run["checkpoint"], S2DM)
    datamodule = load_datamodule(cfg_path)
    datamodule.prepare_data()
    datamodule.setup("test")
    return model, datamodule


def evaluate_once(run: dict, run_dir: Path, model, datamodule, extractor, feature_meta: dict, sample_noise: str,
                  args: argparse.Namespace, seed: int) -> dict:
    """Score a trained run, or reuse its scores when the same checkpoint was scored the same way before.

    (The noise table's row I and the fusion table's ``both`` row are the same run and sampling.)
    """
    key = {"checkpoint": run["checkpoint"], "finished_at": run.get("finished_at"), "sample_noise": sample_noise,
           "num_videos": args.num_videos, "seed": seed, "features": feature_meta.get("sha256")}
    cache = run_dir / f"eval-{sample_noise.replace(':', '')}-{args.num_videos}videos-seed{seed}.json"
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            print(f"[{run['name']}] reusing the scores in {cache}", flush=True)
            return stored["values"]
    t0 = time.perf_counter()
    values = evaluate_model(model, datamodule, extractor, sample_noise, args.num_videos, seed, args.batch_size)
    values["eval_seconds"] = time.perf_counter() - t0
    atomic_write_text(cache, json.dumps(to_jsonable({"key": key, "values": values}), indent=2) + "\n")
    return values


def feature_network(args: argparse.Namespace, output_dir: Path) -> tuple[Path, dict]:
    """The feature network (safetensors); trained (in a subprocess) when its file is missing."""
    path = Path(args.feature_network or output_dir / "synthetic_features.safetensors")
    if not path.is_file():
        command = [sys.executable, "-m", "s2dm_lightning.synthetic.feature_training", "--config",
                   args.feature_config, f"--model.init_args.export_path={path}",
                   f"--trainer.default_root_dir={output_dir / 'features'}",
                   f"--trainer.logger.init_args.save_dir={output_dir / 'features' / 'logs'}"]
        if args.feature_max_steps is not None:
            command += [f"--trainer.max_steps={args.feature_max_steps}",
                        f"--trainer.val_check_interval={args.feature_max_steps}"]
        if args.smoke:
            command += [f"--data.init_args.root={output_dir / 'data_features'}", "--data.init_args.num_videos=12",
                        "--data.init_args.frames_per_video=16", "--trainer.enable_progress_bar=false"]
        print(f"[features] training: {shlex.join(command)}", flush=True)
        subprocess.run(command, cwd=REPO, check=True)
    meta = json.loads(metadata_path(path).read_text()) if metadata_path(path).is_file() else {}
    return path, meta


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started, start = utc_now(), time.perf_counter()
    output_dir = Path(args.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load((REPO / args.config).read_text() if not Path(args.config).is_file()
                          else Path(args.config).read_text())
    max_steps = int(args.max_steps or base["trainer"]["max_steps"])
    data_root = args.data_root or (str(output_dir / "data") if args.smoke else None)
    feature_path, feature_meta = feature_network(args, output_dir)
    extractor = load_feature_extractor(feature_path)
    command = "python benchmarks/ablation.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    results: dict[str, Any] = {
        "command": command.strip(), "started_at": started,
        "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, torch threads "
                   f"{torch.get_num_threads()}, {'CUDA' if torch.cuda.is_available() else 'no GPU'})",
        "settings": {"config": args.config, "max_steps": max_steps, "seeds": args.seeds, "mode": args.mode,
                     "num_videos": args.num_videos, "smoke": args.smoke, "data_root": data_root,
                     "seed_rule": "training: seed_everything=s; video k of seed s: manual_seed(1000003 * s + k)"},
        "feature_network": {"path": str(feature_path), "sha256": feature_meta.get("sha256"),
                            "test_accuracy": (feature_meta.get("test") or {}).get("test/accuracy")},
        "runs": {},
    }
    sections: dict[str, list[tuple[str, str, str, str, str]]] = {}  # rows: id, train, sample, fusion, label
    base_fusion = base["model"]["init_args"].get("flow_fusion", "tokens")
    if args.mode in ("noise", "all"):
        sections["noise"] = [(i, tr, sa, base_fusion, label) for i, tr, sa, label in NOISE_ROWS]
    if args.mode in ("fusion", "all"):
        sections["fusion"] = [(f, "shared", "shared", f, f"flow_fusion={f}" + (" (paper)" if f == "tokens" else ""))
                              for f in FUSION_MODES]
    world = base["data"].get("init_args", {}).get("world", "default")
    transport_key = f"transport_{world}_steps{max_steps}"
    if args.mode == "transport":
        sections[transport_key] = [(i, tr, sa, base_fusion, label) for i, tr, sa, label in TRANSPORT_ROWS
                                   if not args.rows or i in args.rows]
    for key, rows in sections.items():
        results[key] = {"command": command.strip(), "seeds": args.seeds,
                        "rows": [{"id": r[0], "label": r[4], "train_noise": r[1], "sample_noise": r[2],
                                  "fusion": r[3], "per_seed": {}} for r in rows]}
        if key == transport_key:  # its budget and world in the table, its own columns
            results[key].update(title=f"Noise transport: {world} world, {max_steps} training steps",
                                metrics=list(TRANSPORT_METRICS), world=world, config=args.config)
            for row in results[key]["rows"]:
                row["max_steps"] = max_steps
    previous = load_results(output_dir / "results.json") if (output_dir / "results.json").is_file() else None
    for key in section_keys(previous or {}):  # a table this command does not make is kept from an earlier one
        if key not in sections:
            results[key] = previous[key]
            results["runs"].update(previous.get("runs", {}))
    # every training run once, seed by seed, with the table cells it fills: (section, row index, sampling, seed)
    planned: dict[str, tuple[dict, list[tuple[str, int, str, int]]]] = {}
    for seed in args.seeds:
        for key, rows in sections.items():
            for index, (_, train_noise, sample_noise, fusion, _) in enumerate(rows):
                name = f"{train_noise.replace(':', '')}-{fusion}-seed{seed}-steps{max_steps}"
                if name not in planned:
                    planned[name] = (run_config(base, output_dir / "runs" / name, noise=train_noise, fusion=fusion,
                                                seed=seed, max_steps=max_steps, data_root=data_root,
                                                smoke=args.smoke), [])
                planned[name][1].append((key, index, sample_noise, seed))
    # the reference rows (the same test clips under every table); generating the data here, once, also
    # keeps parallel trainings from writing the same dataset at the same time
    first_name, (first_cfg, _) = next(iter(planned.items()))
    reference_config = output_dir / "reference_config.yaml"
    atomic_write_text(reference_config, yaml.safe_dump(first_cfg, sort_keys=False))
    datamodule = load_datamodule(reference_config)
    datamodule.prepare_data()
    datamodule.setup("test")
    reference = {"real": evaluate_real(datamodule), "static": evaluate_real(datamodule, hold_first_frame=True)}
    for key in sections:
        results[key].update(reference)
    lock = threading.Lock()
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None

    def train_and_score(name: str) -> None:
        cfg, cells = planned[name]
        run_dir = output_dir / "runs" / name
        run = train(name, cfg, threads)
        with lock:
            results["runs"][name] = run
        model, datamodule = load_trained(run, run_dir / "config.yaml")
        for key, index, sample_noise, seed in cells:
            values = evaluate_once(run, run_dir, model, datamodule, extractor, feature_meta, sample_noise, args, seed)
            with lock:
                row = results[key]["rows"][index]
                row["per_seed"][str(seed)] = values
                row["summary"] = summarize_row(row["per_seed"])
                print(f"[{key} {row['id']} seed {seed}] " + ", ".join(
                    f"{k} = {v:.4g}" for k, v in values.items() if isinstance(v, float)), flush=True)
                write(results, output_dir, start)

    if args.jobs > 1:  # runs side by side (seed 0's first), each scored as soon as it is trained
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(train_and_score, name) for name in planned]:
                future.result()  # re-raises a failed training
    else:
        for name in planned:
            train_and_score(name)
    write(results, output_dir, start)
    print("\n" + markdown_report(results))
    print(f"results: {output_dir / 'results.json'} and {output_dir / 'results.md'}")
    return results


def write(results: dict, output_dir: Path, start: float) -> None:
    """Write results.json and results.md atomically (after every row, so progress is never lost)."""
    results["wall_time_s"] = time.perf_counter() - start
    results["finished_at"] = utc_now()
    atomic_write_text(output_dir / "results.json", json.dumps(to_jsonable(results), indent=2) + "\n")
    atomic_write_text(output_dir / "results.md", markdown_report(results))


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("S2DM_ABLATION_THREADS", torch.get_num_threads())))
    main()
