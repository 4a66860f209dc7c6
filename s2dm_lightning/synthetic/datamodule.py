"""The S2DM datamodule of the synthetic worlds: their moving-shapes datasets, written on first use.

Everything else is a :class:`~s2dm_lightning.data.VideoDataModule` (clips, flows, flow cache, splits).
"""

from __future__ import annotations

from pathlib import Path

from s2dm_lightning.data.datamodule import KEY, VideoDataModule
from s2dm_lightning.data.datasets import VideoRecord, read_metadata
from s2dm_lightning.data.preprocess import PreprocessSummary
from s2dm_lightning.synthetic.world import World, check_generation_arguments, generate_synthetic_dataset


class SyntheticDataModule(VideoDataModule):
    """The synthetic moving-shapes dataset, generated under ``root`` when missing (see :mod:`.world`).

    Args:
        root: dataset folder; created with the synthetic data when it does not exist.
        num_videos: videos to generate.
        frames_per_video: frames per generated video.
        image_size: generated frame size (square).
        seed: generation seed (content and split).
        world: ``"default"`` (shapes over smooth still backgrounds) or ``"disocclusion"`` (textured
            panning background, a turning or scaling shape, a second shape entering: the first frame
            cannot explain the rest; see :mod:`s2dm_lightning.synthetic.disocclusion`) or ``"textured"``
            (a checked shape over still stripes; :mod:`s2dm_lightning.synthetic.textured`). A ``root``
            holding another world is an error.
        resolution: frames are resized to resolution x resolution.
        flow_size: resolution of the stored flow/occlusion maps (= the diffusion resolution).
        flow_estimator: ``"opencv-dis"`` or ``"opencv-farneback"``.
        dis_preset: DIS preset: ``"ultrafast"``, ``"fast"`` or ``"medium"``.
        num_frames: frames per clip, one from each of num_frames equal intervals.
        batch_size: videos per batch.
        num_workers: DataLoader worker processes.
        val_videos: validation uses the first N videos of the test split.
        num_test_videos: length of the test dataset: the test clips cycled to N items (the evaluation's
            N generated videos; items then carry ``sample_index`` and ``repeat``, 0 on a clip's first
            occurrence); None = each test video once.
        cache_dir: flow cache folder; default ``<root>/flow_cache_<flow_size>``.
        preprocess_workers: processes used to compute missing flows (0 = in this process).
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        num_videos: int = 96,
        frames_per_video: int = 32,
        image_size: int = 32,
        seed: int = 0,
        world: World = "default",
        resolution: int = 32,
        flow_size: int = 32,
        flow_estimator: str = "opencv-dis",
        dis_preset: str = "medium",
        num_frames: int = 16,
        batch_size: int = 4,
        num_workers: int = 0,
        val_videos: int = 8,
        num_test_videos: int | None = None,
        cache_dir: str | None = None,
        preprocess_workers: int = 0,
    ) -> None:
        super().__init__(
            root=root,
            resolution=resolution,
            flow_size=flow_size,
            flow_estimator=flow_estimator,
            dis_preset=dis_preset,
            num_frames=num_frames,
            batch_size=batch_size,
            num_workers=num_workers,
            val_videos=val_videos,
            num_test_videos=num_test_videos,
            cache_dir=cache_dir,
            preprocess_workers=preprocess_workers,
        )
        check_generation_arguments(num_videos, frames_per_video, image_size, KEY, world)
        self.num_videos = num_videos
        self.frames_per_video = frames_per_video
        self.image_size = image_size
        self.seed = seed
        self.world = world

    def generate(self) -> Path:
        """Write the dataset if ``root`` has none yet (atomic; a no-op otherwise)."""
        return generate_synthetic_dataset(
            self.root, self.num_videos, self.frames_per_video, self.image_size, self.seed, world=self.world
        )

    def preprocess(self, progress: bool = True) -> PreprocessSummary:
        self.generate()
        return super().preprocess(progress)

    def list_records(self) -> list[VideoRecord]:
        metadata = self.check_root() / "metadata.csv"
        if not metadata.exists():
            raise FileNotFoundError(
                f"synthetic dataset at data.root={self.root!r} has no metadata.csv; "
                "run prepare_data() or the `preprocess` subcommand to generate it"
            )
        return read_metadata(metadata, self.root)
