"""Training project of the synthetic feature network (:mod:`s2dm_lightning.synthetic.features`).

    python -m s2dm_lightning.synthetic.feature_training --config configs/synthetic_features.yaml

trains it (a few CPU minutes), tests it on the held-out attribute combinations, writes the
safetensors file (``model.export_path``) and, beside it, a JSON with the test accuracy.
``python -m s2dm_lightning fit --config configs/synthetic_features.yaml`` trains and exports too
(without the test). The data is its own synthetic dataset (another seed than ``data/synthetic``),
so the network never sees the videos it later scores.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from s2dm_lightning.data.datasets import frames_to_tensor
from s2dm_lightning.data.sampling import interval_frame_indices
from s2dm_lightning.data.video_io import count_frames, read_video
from s2dm_lightning.synthetic.features import ATTRIBUTES, SyntheticFeatureNet, export_feature_extractor
from s2dm_lightning.synthetic.world import generate_synthetic_dataset


class SyntheticAttributeDataset(Dataset):
    """Clips of one split of a synthetic dataset with their attribute labels.

    Items: ``frames`` float32 (F, 3, R, R) in [-1, 1], ``labels`` int64 (3,) (colour, shape, motion
    indices into :data:`ATTRIBUTES`), ``video_id`` str. Training draws one frame at random from each
    of ``num_frames`` intervals; evaluation takes the first of each (as the S2DM clips).

    Args:
        root: dataset folder holding ``metadata.csv`` with columns shape, color, motion.
        split: ``train``, ``val`` or ``test``.
        resolution: frames are resized to resolution x resolution.
        num_frames: frames per clip.
        train: random frame choice within the intervals.
    """

    def __init__(self, root: str | Path, split: str, resolution: int = 32, num_frames: int = 16,
                 train: bool = False) -> None:
        self.root, self.resolution, self.num_frames, self.train = Path(root), resolution, num_frames, train
        metadata = self.root / "metadata.csv"
        if not metadata.is_file():
            raise FileNotFoundError(f"no metadata.csv in '{self.root}'; generate the synthetic dataset first")
        with open(metadata, newline="") as handle:
            rows = list(csv.DictReader(handle))
        missing = [a for a in ATTRIBUTES if rows and a not in rows[0]]
        if missing:
            raise ValueError(f"'{metadata}' lacks the attribute column(s) {missing}: not a synthetic dataset")
        self.items: list[tuple[str, Path, list[int]]] = []
        for row in rows:
            if row["split"] != split:
                continue
            labels = []
            for name, classes in ATTRIBUTES.items():
                if row[name] not in classes:
                    raise ValueError(f"'{metadata}': unknown {name} {row[name]!r} (known: {classes})")
                labels.append(classes.index(row[name]))
            self.items.append((row["video_id"], self.root / row["path"], labels))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        video_id, path, labels = self.items[index]
        # Training draws use torch's global RNG (seeded per DataLoader worker by Lightning's seed_everything).
        indices = interval_frame_indices(count_frames(path), self.num_frames, random=self.train)
        return {"frames": frames_to_tensor(read_video(path, indices), self.resolution),
                "labels": torch.tensor(labels, dtype=torch.long), "video_id": video_id}


class SyntheticAttributeDataModule(L.LightningDataModule):
    """The feature network's data: its own synthetic dataset, generated under ``root`` when missing.

    Training uses the ``train`` split; validation and test the ``test`` split, whose (colour, shape,
    motion) combinations never occur in training (every single attribute value does).

    Args:
        root: dataset folder (generated on first use).
        num_videos: videos to generate (480 = every one of the 48 combinations 10 times).
        frames_per_video: frames per generated video.
        image_size: generated frame size.
        seed: generation seed (keep it different from the S2DM dataset's).
        resolution: clip frame size.
        num_frames: frames per clip (the S2DM clips have 16).
        batch_size: clips per batch.
        num_workers: DataLoader worker processes.
    """

    def __init__(self, root: str = "data/synthetic_features", num_videos: int = 480, frames_per_video: int = 32,
                 image_size: int = 32, seed: int = 1, resolution: int = 32, num_frames: int = 16,
                 batch_size: int = 16, num_workers: int = 0) -> None:
        super().__init__()
        self.root, self.num_videos, self.frames_per_video = root, num_videos, frames_per_video
        self.image_size, self.seed, self.resolution, self.num_frames = image_size, seed, resolution, num_frames
        self.batch_size, self.num_workers = batch_size, num_workers
        self.datasets: dict[str, SyntheticAttributeDataset] = {}

    def prepare_data(self) -> None:
        generate_synthetic_dataset(self.root, self.num_videos, self.frames_per_video, self.image_size, self.seed)

    def setup(self, stage: str | None = None) -> None:
        def make(split: str, train: bool) -> SyntheticAttributeDataset:
            return SyntheticAttributeDataset(self.root, split, self.resolution, self.num_frames, train)

        self.datasets = {"train": make("train", True), "test": make("test", False)}
        if not len(self.datasets["train"]) or not len(self.datasets["test"]):
            raise ValueError(f"'{self.root}' needs train and test videos; raise data.num_videos")

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        if name not in self.datasets:
            raise RuntimeError("SyntheticAttributeDataModule.setup() must run before its dataloaders are built")
        return DataLoader(self.datasets[name], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


class SyntheticFeatureClassifier(L.LightningModule):
    """Trains :class:`SyntheticFeatureNet` on the attributes; logs ``{val,test}/accuracy[_<attribute>]``.

    Args:
        feature_dim: width of the features.
        width: channels of the first convolution.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        export_path: write the feature network (safetensors) here at the end of ``fit`` (None = don't).
    """

    def __init__(self, feature_dim: int = 64, width: int = 16, learning_rate: float = 2e-3,
                 weight_decay: float = 1e-4, export_path: str | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = SyntheticFeatureNet(feature_dim, width)

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        logits = self.net.classify(batch["frames"])
        labels = batch["labels"]
        loss = sum(F.cross_entropy(out, labels[:, k]) for k, out in enumerate(logits))
        size = len(labels)
        accuracies = []
        for k, (name, out) in enumerate(zip(ATTRIBUTES, logits, strict=True)):
            accuracy = (out.argmax(1) == labels[:, k]).float().mean()
            accuracies.append(accuracy)
            if stage != "train":
                self.log(f"{stage}/accuracy_{name}", accuracy, batch_size=size, sync_dist=True)
        self.log(f"{stage}/loss", loss, batch_size=size, prog_bar=stage == "train", sync_dist=stage != "train")
        self.log(f"{stage}/accuracy", torch.stack(accuracies).mean(), batch_size=size, prog_bar=True,
                 sync_dist=stage != "train")
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.learning_rate,
                                 weight_decay=self.hparams.weight_decay)

    def on_fit_end(self) -> None:
        if self.hparams.export_path and self.trainer.is_global_zero:
            export_feature_extractor(self.net, self.hparams.export_path,
                                     {"global_step": int(self.trainer.global_step)})


def train_feature_network(args: list[str]) -> dict[str, Any]:
    """Fit, test and export the feature network from a config (the arguments of ``fit``, e.g.
    ``["--config", "configs/synthetic_features.yaml", "--trainer.max_steps=2"]``).

    Returns:
        ``{"path": the safetensors file, "test": {metric: value}}``; the JSON beside the file holds the same.
    """
    from s2dm_lightning.commands.trainer_cli import TrainerCLI

    # TrainerCLI: the run machinery of `fit` without the FVD/KVD callback (it would want I3D weights here).
    cli = TrainerCLI(args=args, run=False)
    model, datamodule, trainer = cli.model, cli.datamodule, cli.trainer
    if not isinstance(model, SyntheticFeatureClassifier):
        raise TypeError(f"the config's model must be a SyntheticFeatureClassifier, got {type(model).__name__}")
    if not model.hparams.export_path:
        raise ValueError("set model.init_args.export_path: where the trained feature network is written")
    trainer.fit(model, datamodule=datamodule)
    results = trainer.test(model, datamodule=datamodule)[0]
    test = {k: float(v) for k, v in results.items()}
    path = export_feature_extractor(model.net, model.hparams.export_path,
                                    {"global_step": int(trainer.global_step), "test": test})
    return {"path": str(path), "test": test}


def main(argv: list[str] | None = None) -> None:
    """Command line: the arguments of ``fit`` (``--config`` and overrides); prints the test accuracy."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return
    out = train_feature_network(args)
    accuracy = ", ".join(f"{k} = {v:.3f}" for k, v in out["test"].items() if "accuracy" in k)
    print(f"synthetic feature network: {out['path']}\ntest (held-out combinations): {accuracy}")


if __name__ == "__main__":
    # Through the package module, so that the config's class_path names the same classes as this run.
    from s2dm_lightning.synthetic.feature_training import main as _package_main

    _package_main()
