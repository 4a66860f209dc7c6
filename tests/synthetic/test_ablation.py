"""The ablation's scoring of a model, its summaries, tables and plots, and the ablation notebook."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.evaluation import RandomConv3dFeatures
from s2dm_lightning.models import S2DM
from s2dm_lightning.synthetic.ablation import (
    ALL_METRICS,
    METRICS,
    TRANSPORT_METRICS,
    TRANSPORT_ROWS,
    evaluate_model,
    evaluate_real,
    load_results,
    markdown_report,
    markdown_table,
    mean_std,
    motion_scores,
    per_seed_markdown,
    summarize_row,
)
from s2dm_lightning.synthetic.textured import render_textured_video
from tests.conftest import HashTextEncoder, assert_equal_to_batch_rounding, fake_batch, tiny_unet

REPO = Path(__file__).resolve().parents[2]


class TinyTestData:
    """What evaluate_model needs of a data module: a test dataset and the flow settings."""

    def __init__(self) -> None:
        batch = fake_batch(num_videos=3, num_frames=3, size=8, flow_size=8)
        items = [{k: v[i] for k, v in batch.items()} for i in range(3)]
        self.datasets = {"test": items}
        self.flow_settings = FlowSettings(flow_size=8)


# A sampled pixel within float32 rounding of a uint8 level boundary may round to the neighbouring level in a
# batch of another size (one level is 2 / 255 = 7.8e-3). Moving one pixel of these 4 tiny videos by one
# level changed each metric by at most 9.1e-4 of its value (drift; FVD/KVD 1e-4, the others 2e-5; 20 random
# pixels measured), so 2e-3 allows two such flips; another seed moves the metrics by 0.5-44%.
METRIC_REL_TOL = 2e-3


def recorded_videos(model: S2DM) -> list[torch.Tensor]:
    """The model's sampled videos (before quantization), one (F, 3, H, W) tensor per video, in call order."""
    videos: list[torch.Tensor] = []
    sample = model.sample_videos

    def recording(*args, **kwargs):
        out = sample(*args, **kwargs)
        videos.extend(out.cpu())
        return out

    model.sample_videos = recording
    return videos


def test_evaluate_model_scores_every_metric_and_seeds_are_fixed():
    model = S2DM(tiny_unet(in_channels=6), HashTextEncoder(), flow_fusion="both", flow_size=8,
                 num_inference_steps=2, guidance_scale=2.0)
    data, extractor = TinyTestData(), RandomConv3dFeatures(feature_dim=4)
    videos = recorded_videos(model)
    first = evaluate_model(model, data, extractor, "shared", num_videos=4, seed=0, batch_size=3)
    again = evaluate_model(model, data, extractor, "shared", num_videos=4, seed=0, batch_size=2)
    reseeded = evaluate_model(model, data, extractor, "shared", num_videos=4, seed=1, batch_size=2)
    assert set(METRICS) <= set(first) and first["num_videos"] == 4 and first["num_real_videos"] == 3
    # batch size is irrelevant: the same videos, up to the rounding of another batch make-up ...
    by_three, by_two, by_seed_1 = (torch.stack(videos[i:i + 4]) for i in (0, 4, 8))
    assert_equal_to_batch_rounding(by_two, by_three, unlike=by_seed_1)
    # ... and so the same scores, up to a uint8 level flipped by that rounding; another seed is far off
    assert all(first[m] == pytest.approx(again[m], rel=METRIC_REL_TOL) for m in METRICS)
    assert max(abs(reseeded[m] / first[m] - 1) for m in METRICS) > 10 * METRIC_REL_TOL
    other = evaluate_model(model, data, extractor, "independent", num_videos=4, seed=0)
    assert other["drift"] != first["drift"]
    real = evaluate_real(data)
    assert set(real) == {"warping_error", "flow_epe", "drift", "centroid_error", "sticking", "sticking_moving",
                         "sticking_still"}
    assert set(ALL_METRICS) <= set(first)
    still = evaluate_real(data, hold_first_frame=True)  # frame 1 repeated: nothing moves
    assert still["drift"] == 0.0 and still["warping_error"] > 0.0 and still["flow_epe"] > 0.0
    with pytest.raises(ValueError, match="num_videos"):
        evaluate_model(model, data, extractor, "shared", num_videos=1, seed=0)


def fake_results() -> dict:
    rows = []
    for rid, train, sample in (("I", "shared", "shared"), ("II", "shared", "independent"),
                               ("III", "independent", "independent")):
        per_seed = {str(s): {m: 1.0 + s + (rid == "III") for m in METRICS} for s in (0, 1)}
        rows.append({"id": rid, "label": f"row {rid}", "per_seed": per_seed, "summary": summarize_row(per_seed),
                     "train_noise": train, "sample_noise": sample, "fusion": "both"})
    return {"command": "python benchmarks/ablation.py --smoke", "settings": {"seeds": [0, 1], "smoke": True},
            "wall_time_s": 60.0, "machine": "test", "feature_network": {"path": "f.pt"},
            "runs": {"a": {"train_seconds": 600.0}, "b": {"train_seconds": 660.0}},
            "noise": {"rows": rows, "real": {"warping_error": 0.001, "flow_epe": 0.01, "drift": 0.0},
                      "static": {"warping_error": 0.05, "flow_epe": 0.9, "drift": 0.0}}}


def test_summaries_and_tables():
    assert mean_std([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(2**0.5), "n": 2}
    assert mean_std([2.0])["std"] is None and mean_std([float("nan")])["mean"] is None
    report = markdown_report(fake_results())
    assert "SMOKE" in report and "| row I | 1.5 ± 0.71 |" in report and "real test clips" in report
    assert "| real frame 1 held still (ignores the flow; reference) | – | – | 0.05 | 0.9 | 0 |" in report
    with_times = fake_results()
    for row in with_times["noise"]["rows"]:
        for values in row["per_seed"].values():
            values["eval_seconds"] = 30.0
    assert "took 21 min of training and 3 min of sampling and scoring" in markdown_report(with_times)
    with_times["fusion"] = {"rows": [dict(with_times["noise"]["rows"][0], id="both")]}  # the same scoring as I
    assert "and 3 min of sampling and scoring" in markdown_report(with_times)
    assert "No ablation results" in markdown_report(None)
    assert per_seed_markdown(fake_results(), "noise").count("\n") == 2 + 6 - 1
    merged = fake_results()
    merged["noise"]["command"], merged["noise"]["seeds"] = "python benchmarks/ablation.py --mode noise", [0, 1]
    assert "Command: `python benchmarks/ablation.py --mode noise`; seeds [0, 1]." in markdown_report(merged)


def run_notebook_cells(path: Path, parameters: dict) -> dict:
    """Execute a notebook's code cells in order in this process, the parameters cell's values replaced."""
    namespace: dict = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        exec(compile(cell.source, str(path), "exec"), namespace)  # noqa: S102 - our own notebook
        if "parameters" in cell.metadata.get("tags", []):
            namespace.update(parameters)
    return namespace


def test_ablation_notebook_handles_missing_and_present_results(tmp_path, capsys):
    import matplotlib  # a dev extra

    matplotlib.use("Agg")
    notebook = REPO / "notebooks" / "ablation.ipynb"
    namespace = run_notebook_cells(notebook, {"RESULTS": str(tmp_path / "missing.json")})
    assert namespace["results"] is None and "No ablation results" in capsys.readouterr().out
    path = tmp_path / "results.json"
    path.write_text(json.dumps(fake_results()))
    namespace = run_notebook_cells(notebook, {"RESULTS": str(path)})
    assert namespace["results"]["noise"]["rows"][0]["id"] == "I"
    assert load_results(path) == namespace["results"]


def _textured_clips(count: int = 2, frames: int = 6, size: int = 32):
    """Real textured-world clips (checked shape over stripes) in [-1, 1], their conditions and captions."""
    rng = np.random.default_rng(0)
    clips = [render_textured_video("red", "square", motion, frames, size, rng)
             for motion in ("moves to the right", "moves up")[:count]]
    videos = torch.stack([torch.from_numpy(v).permute(0, 3, 1, 2).float() / 127.5 - 1 for v, _ in clips])
    return videos, torch.stack([torch.from_numpy(c) for _, c in clips]), ["a red square moves to the right",
                                                                          "a red square moves up"][:count]


def test_motion_scores_tell_a_real_clip_from_a_frozen_one():
    real, condition, captions = _textured_clips()
    scores = motion_scores(real, real, condition, captions, world="textured")
    assert scores["centroid_error"] == 0.0 and scores["sticking"] < 1e-3  # the checks move with the shape
    # frame 1 held still: the shape stays where frame 1 had it while the real one travels, and on the pixels
    # that are shape in both, its checks stay on the screen (still error 0: the ratio is huge)
    frozen = motion_scores(real[:, :1].expand_as(real), real, condition, captions, world="textured")
    assert frozen["centroid_error"] > 3 and frozen["sticking_still"] == 0.0 and frozen["sticking"] > 1e3
    blank = motion_scores(torch.full_like(real, -1.0), real, condition, captions, world="textured")
    assert np.isnan(blank["sticking"]) and np.isnan(blank["centroid_error"])  # no shape generated: unscored


def test_transport_rows_and_table():
    assert [r[1] for r in TRANSPORT_ROWS] == [r[2] for r in TRANSPORT_ROWS]  # paired as Table 2 pairs I and III
    assert [r[1] for r in TRANSPORT_ROWS] == ["shared", "warped", "partial:0.5", "partial", "independent"]
    per_seed = {str(s): {m: 1.0 + s for m in ALL_METRICS} for s in (0, 1, 2)}
    section = {"metrics": list(TRANSPORT_METRICS), "title": "Noise transport: textured world, 400 training steps",
               "rows": [{"id": "W", "label": "warped", "max_steps": 400, "per_seed": per_seed},
                        {"id": "I", "label": "shared", "max_steps": 1200, "per_seed": {"0": per_seed["0"]}}],
               "real": {m: 0.5 for m in ALL_METRICS if m not in ("fvd", "kvd")}}
    table = markdown_table(section).splitlines()
    assert table[0].startswith("| setting | steps | seeds | centroid error (px) ↓ |")
    assert table[2] == "| warped | 400 | 3 | " + " | ".join(["2 ± 1"] * len(TRANSPORT_METRICS)) + " |"
    assert table[3].startswith("| shared | 1200 | 1 | 1 | ")  # one seed: no std
    assert table[4].endswith("| 0.5 | – | – |")  # the reference has no FVD/KVD
    results = {"settings": {"seeds": [0, 1, 2]}, "transport_textured_steps400": section}
    report = markdown_report(results)
    assert "## Noise transport: textured world, 400 training steps" in report and "Per seed:" in report
    assert per_seed_markdown(results, "transport_textured_steps400").count("| W |") == 3
