"""A local S3-compatible server (moto's server mode) and an upload to it: for the S3 tests and the streaming
benchmark (benchmarks/bench_streaming.py), so both talk HTTP to the same kind of server."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

BUCKET = "s2dm-shards"


class S3ServerUnavailable(RuntimeError):
    """moto[server] is missing or its server did not start (the message says which)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def local_s3_server() -> Iterator[tuple[str, dict[str, str]]]:
    """``(url, environment)``: a moto S3 server on a free local port and the AWS variables (test credentials,
    its endpoint) that litdata's and boto3's clients read; the caller sets them. Stopped on exit."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        raise S3ServerUnavailable(f"moto[server] is not installed (the dev extra): {error}") from error
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as error:  # noqa: BLE001 - any reason the server cannot start, with the reason
        raise S3ServerUnavailable(f"the local S3 server (moto) could not start: {error}") from error
    url = f"http://127.0.0.1:{port}"
    environment = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_ENDPOINT_URL": url}
    try:
        yield url, environment
    finally:
        server.stop()


def upload(folder: str | os.PathLike, url: str, prefix: str) -> None:
    """Every file of ``folder`` to s3://BUCKET/prefix/..., as `aws s3 cp --recursive` would."""
    import boto3

    client = boto3.client("s3", endpoint_url=url)
    client.create_bucket(Bucket=BUCKET)
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder).as_posix()}")
