"""StreamingVideoDataModule from an object store: a real local S3 server (moto's server mode), started here.

Not a mock of the client: litdata's own S3 client talks HTTP to the server, as it would to AWS.
"""

from __future__ import annotations

import socket

import pytest

from tests.data.shard_fixtures import CLIPS_PER_VIDEO, packed_datamodule

pytest.importorskip("litdata", reason="the stream extra (litdata) is not installed")
BUCKET = "s2dm-shards"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3_server(monkeypatch):
    """The URL of a moto S3 server on a free local port, with test credentials in the environment."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        pytest.skip(f"moto[server] is not installed (the dev extra): {error}")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as error:  # noqa: BLE001 - any reason the server cannot start is a skip, with the reason
        pytest.skip(f"the local S3 server (moto) could not start: {error}")
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")):
        monkeypatch.setenv(name, value)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def upload(folder, url: str, prefix: str) -> None:
    """Every file of ``folder`` to s3://BUCKET/prefix/..., as `aws s3 cp --recursive` would."""
    import boto3

    client = boto3.client("s3", endpoint_url=url)
    client.create_bucket(Bucket=BUCKET)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder).as_posix()}")


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
