"""The whole path on the S3 protocol: seed uploads through boto3 to moto's server, and
the audio endpoint streams byte ranges back from it."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from sqlalchemy import select

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import Voice
from tests.databases import make_config
from tests.s3server import FAKE_KEY_ID, FAKE_SECRET, REGION, isolate_aws_env, make_bucket, s3_client


@pytest.fixture
def s3_app(s3_endpoint, tmp_path, monkeypatch):
    isolate_aws_env(monkeypatch, tmp_path)
    bucket = make_bucket(s3_endpoint)
    app = create_app(
        make_config(
            f"sqlite:///{tmp_path / 's3.db'}",
            tmp_path,
            STORAGE_BACKEND="s3",
            S3_BUCKET=bucket,
            S3_ENDPOINT_URL=s3_endpoint,
            S3_REGION=REGION,
            S3_ACCESS_KEY_ID=FAKE_KEY_ID,
            S3_SECRET_ACCESS_KEY=FAKE_SECRET,
            S3_ADDRESSING_STYLE="path",
        )
    )
    with app.app_context():
        db.create_all()
    app.config["TEST_BUCKET"] = bucket
    yield app
    with app.app_context():
        db.engine.dispose()


def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_seed_on_s3_uploads_twenty_objects_once(s3_app: Flask, s3_endpoint: str) -> None:
    runner = s3_app.test_cli_runner()
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    bucket = s3_app.config["TEST_BUCKET"]
    keys = bucket_keys(s3_endpoint, bucket)
    with s3_app.app_context():
        expected = sorted(v.audio_key for v in db.session.scalars(select(Voice)))
    assert keys == expected and len(keys) == 20
    assert all(k.startswith("voices/system/") for k in keys)

    second = runner.invoke(args=["seed"])
    assert "Nothing to do" in second.output, second.output


def test_audio_range_streams_from_s3(s3_app: Flask, s3_endpoint: str) -> None:
    assert s3_app.test_cli_runner().invoke(args=["seed"]).exit_code == 0
    with s3_app.app_context():
        voice = db.session.scalars(select(Voice).where(Voice.name == "Ivan")).one()
        voice_id, key = voice.id, voice.audio_key
    stored = (
        s3_client(s3_endpoint)
        .get_object(Bucket=s3_app.config["TEST_BUCKET"], Key=key)["Body"]
        .read()
    )
    client = s3_app.test_client()
    whole = client.get(f"/voices/{voice_id}/audio")
    assert whole.status_code == 200 and whole.data == stored
    assert whole.data[:4] == b"RIFF" and whole.headers["Content-Type"] == "audio/wav"
    part = client.get(f"/voices/{voice_id}/audio", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.data == stored[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(stored)}"
    assert client.get("/readyz").status_code == 200


def test_seed_into_a_missing_bucket_names_it_and_changes_nothing(s3_app: Flask) -> None:
    s3_app.config["S3_BUCKET"] = "voxboard-no-such-bucket"
    result = s3_app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 1
    assert "Error: seed failed: S3 bucket 'voxboard-no-such-bucket' does not exist" in result.output
    with s3_app.app_context():
        assert db.session.scalars(select(Voice)).all() == []


def test_sweep_on_s3_deletes_only_unreferenced_objects(s3_app: Flask, s3_endpoint: str) -> None:
    runner = s3_app.test_cli_runner()
    assert runner.invoke(args=["seed"]).exit_code == 0
    bucket = s3_app.config["TEST_BUCKET"]
    orphan = f"generations/orgs/{uuid.uuid4()}/{uuid.uuid4()}"
    s3_client(s3_endpoint).put_object(Bucket=bucket, Key=orphan, Body=b"lost")

    kept = runner.invoke(args=["storage", "sweep", "--delete"])  # default grace: 60 min
    assert "0 orphaned, 1 too new to judge" in kept.output, kept.output
    result = runner.invoke(args=["storage", "sweep", "--delete", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "Scanned 21 objects: 20 in use, 1 orphaned" in result.output
    assert orphan not in bucket_keys(s3_endpoint, bucket)
    assert len(bucket_keys(s3_endpoint, bucket)) == 20
