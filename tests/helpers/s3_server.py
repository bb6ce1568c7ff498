"""A moto S3 server on loopback with one empty bucket, for the tests of `s3://` storage."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_EC2_METADATA_DISABLED": "true"}


@dataclass(frozen=True)
class S3Server:
    bucket: str
    port: int
    client: Any  # a boto3 S3 client pointed at the server

    def uri(self, key: str) -> str:
        """`s3://bucket/key` with the pyarrow options that reach this server."""
        return (f"s3://{self.bucket}/{key}?endpoint_override=127.0.0.1:{self.port}"
                "&scheme=http&region=us-east-1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_s3(bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """Start the server, set dummy AWS credentials, create `bucket`; stop on exit."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}",
                              region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        yield S3Server(bucket, port, client)
    finally:
        server.stop()
