"""VideoPredictionWriter with trainer.predict."""

import csv

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import lightning.pytorch as pl
import numpy as np
import torch

from s2dm_lightning.callbacks import VideoPredictionWriter
from s2dm_lightning.io import safe_file_stem


def test_predict_writes_videos_sheet_and_index(tmp_path, module, loader, video_shape):
    FRAMES, SIZE = video_shape
    out = tmp_path / "predict"
    writer = VideoPredictionWriter(output_dir=str(out), fps=4, scale=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[writer],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.predict(module, dataloaders=loader, return_predictions=False)

    ids = [safe_file_stem(f"subject{i}/take{i:03d}") for i in range(5)]  # "/" replaced, plus a hash
    expected = {f"{i}{ext}" for i in ids for ext in (".mp4", ".gif", "_panel.gif")}
    assert {p.name for p in out.iterdir()} == expected | {"contact_sheet.png", "index.csv"}

    gif = iio.imread(out / f"{ids[0]}.gif", index=None, mode="RGB")
    assert gif.shape == (FRAMES, 2 * SIZE, 2 * SIZE, 3)
    reader = imageio_v2.get_reader(out / f"{ids[0]}.mp4", format="FFMPEG")
    assert len([f for f in reader.iter_data()]) == FRAMES
    reader.close()
    panel = iio.imread(out / f"{ids[0]}_panel.gif", index=None, mode="RGB")
    assert panel.shape == (FRAMES, 2 * SIZE, 3 * 2 * SIZE + 2 * 2, 3)  # video | flow | occlusion

    sheet = iio.imread(out / "contact_sheet.png")
    rows = 5
    assert sheet.shape == (rows * (18 + 2 * SIZE) + (rows - 1) * 2, FRAMES * 2 * SIZE + (FRAMES - 1) * 2, 3)

    with open(out / "index.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["video_id"] for r in table] == [f"subject{i}/take{i:03d}" for i in range(5)]
    assert table[2]["caption"] == "square number 2 moves right"
    assert table[0]["files"].split(";") == [f"{ids[0]}.mp4", f"{ids[0]}.gif", f"{ids[0]}_panel.gif"]


def test_no_panels_and_repeated_ids(tmp_path):
    writer = VideoPredictionWriter(output_dir=str(tmp_path), scale=1, write_panels=False)
    videos = np.zeros((2, 3, 3, 8, 8), np.float32)
    prediction = {"videos": torch.from_numpy(videos), "caption": ["a", "b"], "video_id": ["x", "x"]}
    writer.write_on_batch_end(None, None, prediction, None, None, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x-2.gif", "x-2.mp4", "x.gif", "x.mp4"]


def test_panel_shows_the_real_clip_next_to_the_generated_one(tmp_path):
    frames, size = 3, 4
    generated = torch.full((1, frames, 3, size, size), -1.0)
    generated[:, :, 0] = 1.0  # red
    real = torch.full((1, frames, 3, size, size), -1.0)
    real[:, :, 2] = 1.0  # blue
    flow = torch.zeros(1, frames, 3, size, size)
    writer = VideoPredictionWriter(output_dir=str(tmp_path), scale=1)
    tmp_path.mkdir(exist_ok=True)
    writer.on_predict_epoch_start(None, None)
    writer.write_on_batch_end(None, None, {"videos": generated, "flow": flow, "real": real, "caption": ["c"],
                                           "video_id": ["v"]}, None, None, 0)
    panel = iio.imread(tmp_path / "v_panel.gif", index=None, mode="RGB")
    panel = panel.reshape(-1, *panel.shape[-3:])  # a GIF of identical frames may be stored as one frame
    assert panel.shape[1:] == (size, 4 * size + 3 * 2, 3)  # generated | real | flow | occlusion
    # GIF quantises to a palette: pure red and pure blue survive it to within a few levels.
    np.testing.assert_allclose(panel[:, :, :size], np.broadcast_to([255, 0, 0], (len(panel), size, size, 3)), atol=8)
    np.testing.assert_allclose(panel[:, :, size + 2:2 * size + 2],
                               np.broadcast_to([0, 0, 255], (len(panel), size, size, 3)), atol=8)
