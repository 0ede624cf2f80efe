"""Run moto's S3 server in-process so tests talk real HTTP to a fake bucket.

Reuse from any test module::

    @pytest.fixture(scope="session")
    def s3_endpoint() -> Iterator[str]:
        with start_moto_server() as endpoint:
            yield endpoint

then ``isolate_aws_env(monkeypatch, tmp_path)`` in every test that builds a client and
``make_bucket(endpoint)`` for a fresh bucket.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from flask import Flask
from moto.server import ThreadedMotoServer

from dashboard import storage

FAKE_KEY_ID = "testing"
FAKE_SECRET = "testing"
REGION = "us-east-1"


@contextmanager
def start_moto_server() -> Iterator[str]:
    """Serve moto's S3 on a free loopback port and yield its endpoint URL."""
    # Port 0 lets the OS pick, so parallel runs never collide; loopback only.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def isolate_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hide the machine's AWS settings and offer only fake credentials.

    A developer's AWS_PROFILE, CA bundle or endpoint override would otherwise leak
    into the clients under test, and instance-metadata probing would stall them.
    """
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    nowhere = str(tmp_path / "no-aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", nowhere)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", nowhere)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # Loopback must never go through a proxy configured for the machine.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@functools.cache
def s3_client(endpoint_url: str) -> Any:
    """Return a plain boto3 client for arranging fixtures (buckets, raw objects)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=FAKE_KEY_ID,
        aws_secret_access_key=FAKE_SECRET,
        config=Config(s3={"addressing_style": "path"}),
    )


def make_bucket(endpoint_url: str) -> str:
    """Create a bucket with a fresh name, so tests sharing one server never collide."""
    name = f"voxboard-test-{uuid.uuid4().hex[:20]}"
    s3_client(endpoint_url).create_bucket(Bucket=name)
    return name


def use_s3(app: Flask, endpoint: str, **settings: Any) -> None:
    """Point the app's storage at an S3 ``endpoint``; it is rebuilt on next use."""
    app.config.update(
        STORAGE_BACKEND="s3",
        S3_BUCKET="voices",
        S3_ENDPOINT_URL=endpoint,
        S3_REGION="us-east-1",
        S3_ACCESS_KEY_ID="k",
        S3_SECRET_ACCESS_KEY="s",
        S3_ADDRESSING_STYLE="path",
        **settings,
    )
    app.extensions[storage.EXTENSION_KEY] = None
