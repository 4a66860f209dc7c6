"""benchmarks/image_to_video.py end to end on a tiny untrained pixel-space S2DM and tiny synthetic data."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
from pathlib import Path

import torch
import yaml

from tests.pipelines.conftest import S2DM_YAML, SIZE, tiny_s2dm

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "image_to_video.py"
spec = importlib.util.spec_from_file_location("image_to_video_benchmark", SCRIPT)
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)


def _run_folder(tmp_path: Path) -> Path:
    """A run folder as LightningCLI leaves it: config.yaml beside checkpoints/last.ckpt."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(S2DM_YAML)
    torch.save({"state_dict": tiny_s2dm().state_dict()}, run / "checkpoints" / "last.ckpt")
    return run / "checkpoints" / "last.ckpt"


def _data_config(tmp_path: Path) -> Path:
    data = {"class_path": "s2dm_lightning.synthetic.SyntheticDataModule",
            "init_args": {"root": str(tmp_path / "data"), "num_videos": 16, "frames_per_video": 8, "image_size": 16,
                          "resolution": SIZE, "flow_size": SIZE, "num_frames": 4, "batch_size": 2,
                          "val_videos": 1, "dis_preset": "ultrafast"}}
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({"data": data}))
    return path


def test_main_scores_every_row_and_writes_table_json_and_sheet(tmp_path: Path) -> None:
    checkpoint = _run_folder(tmp_path)
    output = tmp_path / "out" / "i2v"
    benchmark.main(["--data_config", str(_data_config(tmp_path)), "--checkpoint", f"tiny={checkpoint}",
                    "--seeds", "0", "1", "--inversion_steps", "2", "--num_videos", "3", "--sheet_videos", "2",
                    "--sheet_frames", "1", "4", "--output", str(output)])
    report = json.loads(output.with_suffix(".json").read_text())
    rows = ["warp", "random z_T (tiny)", "inversion 2 (tiny)", "inversion 2 + 2 fixed-point (tiny)",
            "inversion 2, z_T transported (tiny)"]
    counts = {row: sum(v["row"] == row for v in report["per_video"]) for row in rows}
    # 16 videos: 3 in test; random and transported (fresh noise where disoccluded): 2 seeds
    assert counts == {rows[0]: 3, rows[1]: 6, rows[2]: 3, rows[3]: 3, rows[4]: 6}
    warp = [v for v in report["per_video"] if v["row"] == "warp"]
    assert all(v["psnr_first_frame"] > 60 for v in warp)  # frame 1 warped by the identity is frame 1
    assert report["summary"]["random z_T (tiny)"]["psnr_visible"]["n"] == 2
    table = output.with_suffix(".md").read_text()
    assert all(f"| {row} |" in table for row in rows) and "(2 seeds)" in table
    for suffix in (".md", ".json", ".png"):
        mode = stat.S_IMODE(output.with_suffix(suffix).stat().st_mode)
        assert mode == 0o666 & ~_umask(), (suffix, oct(mode))
    assert sorted(p.name for p in output.parent.iterdir()) == ["i2v.json", "i2v.md", "i2v.png"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _ReferenceModel:
    """Records what a reference-conditioned model is asked to sample with."""

    device = torch.device("cpu")

    class hparams:  # noqa: N801 - as Lightning's AttributeDict reads
        sampling_seed = 0
        reference_condition = "warped"

    def sample_videos(self, batch, generator=None, image=None):
        self.batch, self.image, self.seeds = batch, image, [g.initial_seed() for g in generator]
        return torch.zeros(len(batch["caption"]), 4, 3, SIZE, SIZE)


def test_reference_rows_give_the_model_frame_1_and_the_run_seeds() -> None:
    frames = torch.rand(2, 4, 3, SIZE, SIZE)
    batch = {"frames": frames, "caption": ["a", "b"], "sample_index": torch.tensor([4, 5])}
    model = _ReferenceModel()
    benchmark.reference_method(model)(batch, 0, 2)
    assert torch.equal(model.image, frames[:, 0])
    assert model.seeds == [2 * 100003 + 4, 2 * 100003 + 5]  # run 2, videos 4 and 5: as `predict --n_runs`
    assert benchmark.reference_condition(model) == "warped"


def test_no_image_rows_give_a_reference_model_no_frames() -> None:
    # sample_videos conditions a reference model on the batch's frame 1 when the batch has frames:
    # the random-z_T row must not pass them, or it would be an image-to-video row in disguise.
    batch = {"frames": torch.rand(2, 4, 3, SIZE, SIZE), "flow": torch.rand(2, 4, 3, SIZE, SIZE),
             "caption": ["a", "b"], "sample_index": torch.tensor([0, 1])}
    model = _ReferenceModel()
    benchmark.random_method(model)(batch, 0, 0)
    assert "frames" not in model.batch and model.image is None
    assert model.batch["flow"] is batch["flow"] and model.batch["caption"] == ["a", "b"]


def test_combine_counts_a_row_scored_by_several_runs_once(tmp_path: Path) -> None:
    def video(row: str, checkpoint: str, psnr: float, video_id: str = "v0") -> dict:
        return {"row": row, "checkpoint": checkpoint, "seed": None if row == "warp" else 0, "video_id": video_id,
                **{measure: psnr for measure in benchmark.MEASURES}}
    runs = []
    for k, psnr in enumerate([20.0, 24.0]):  # two training seeds of one method, each run also scoring warp
        path = tmp_path / f"run{k}.json"
        path.write_text(json.dumps({"world": "default", "per_video": [
            video("warp", "", 40.0), video("warp", "", 40.0, "v1"), video("ref (m)", f"m{k}.ckpt", psnr)]}))
        runs.append(str(path))
    output = tmp_path / "combined"
    benchmark.main(["--combine", *runs, "--output", str(output)])
    report = json.loads(output.with_suffix(".json").read_text())
    assert sum(v["row"] == "warp" for v in report["per_video"]) == 2  # v0 and v1, once each
    ref = report["summary"]["ref (m)"]["psnr_visible"]
    assert (ref["mean"], ref["n"], ref["across"]) == (22.0, 2, "checkpoints")
