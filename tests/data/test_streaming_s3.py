"""StreamingVideoDataModule from an object store: a real local S3 server (moto's server mode), started here.

Not a mock of the client: litdata's own S3 client talks HTTP to the server, as it would to AWS.
"""

from __future__ import annotations

import pytest

from tests.data.s3_server import BUCKET, S3ServerUnavailable, local_s3_server, upload
from tests.data.shard_fixtures import CLIPS_PER_VIDEO, packed_datamodule

pytest.importorskip("litdata", reason="the stream extra (litdata) is not installed")


@pytest.fixture
def s3_server(monkeypatch):
    """The URL of a moto S3 server on a free local port, with test credentials in the environment."""
    try:
        with local_s3_server() as (url, environment):
            for name, value in environment.items():
                monkeypatch.setenv(name, value)
            yield url
    except S3ServerUnavailable as error:
        pytest.skip(str(error))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_clips_stream_from_a_local_s3_server(synthetic_root, shard_set, s3_server, tmp_path, num_workers):
    from s2dm_lightning.data.streaming import StreamingVideoDataModule

    upload(shard_set, s3_server, "synthetic")
    streaming = StreamingVideoDataModule(f"s3://{BUCKET}/synthetic", batch_size=2, num_workers=num_workers,
                                         cache_dir=str(tmp_path / "cache"),
                                         storage_options={"endpoint_url": s3_server})
    streaming.setup("fit")
    files = packed_datamodule(synthetic_root)
    assert streaming.resolution == files.resolution and streaming.flow_settings == files.flow_settings
    clips = [clip for batch in streaming.train_dataloader() for clip in batch["clip_id"]]
    train_videos = [r.video_id for r in files.datasets["train"].records]
    assert sorted(clips) == sorted(f"{v}/{c}" for v in train_videos for c in range(CLIPS_PER_VIDEO))
    assert list((tmp_path / "cache").rglob("chunk-*.bin"))  # the chunks came over the wire into the cache
    assert len(list(streaming.val_dataloader())) == len(files.datasets["val"])


def test_a_bucket_without_val_shards_trains_without_validation(shard_set, s3_server, tmp_path):
    """Only train/ uploaded: the missing val/ is a 404 from the server, which means "no validation", as a
    local folder without val/ does; not a failed setup."""
    from s2dm_lightning.data.streaming import StreamingVideoDataModule

    upload(shard_set / "train", s3_server, "train-only/train")
    streaming = StreamingVideoDataModule(f"s3://{BUCKET}/train-only", batch_size=2,
                                         cache_dir=str(tmp_path / "cache"),
                                         storage_options={"endpoint_url": s3_server})
    streaming.setup("fit")
    assert streaming.val_dataloader() == []
    assert next(iter(streaming.train_dataloader()))["clip_id"]
