"""`flask storage sweep`: orphans older than the grace period go, everything else stays."""

from __future__ import annotations

import io
import os
import time
import uuid

import pytest

from dashboard import tenancy
from dashboard.extensions import db
from dashboard.storage import (
    custom_voice_key,
    generation_key,
    get_storage,
    probe_key,
    system_voice_key,
)
from dashboard.storage.sweep import owner_of
from tests import factories
from tests.databases import BACKENDS

HOUR = 3600


def put(key: str, age_seconds: int = 0) -> str:
    """Store a small object under `key`, back-dated by `age_seconds` (local storage)."""
    storage = get_storage()
    storage.put(key, io.BytesIO(b"RIFF....WAVE"), content_type="audio/wav")
    if age_seconds:
        path = storage.root / key
        then = time.time() - age_seconds
        os.utime(path, (then, then))
    return key


@pytest.fixture
def objects(app):
    """One referenced object of each kind, old and new orphans, and a stranger's file."""
    with app.app_context(), tenancy.all_tenants("test setup"):
        org = factories.make_org()
        system = factories.make_voice(name="System One")
        custom = factories.make_voice(org, name="Custom One")
        generation = factories.make_generation(
            org, custom, status="succeeded", audio_key="placeholder"
        )
        keys = {
            "system": put(system_voice_key(system.id), 2 * HOUR),
            "custom": put(f"{custom_voice_key(org.id, custom.id)}.r2", 2 * HOUR),
            "generation": put(generation_key(org.id, generation.id), 2 * HOUR),
            "old_custom_revision": put(custom_voice_key(org.id, custom.id), 2 * HOUR),
            "old_orphan": put(generation_key(org.id, uuid.uuid4()), 2 * HOUR),
            "new_orphan": put(generation_key(org.id, uuid.uuid4())),
            "stranger": put("voices/readme-by-someone-else", 2 * HOUR),
        }
        system.audio_key = keys["system"]
        custom.audio_key = keys["custom"]
        generation.audio_key = keys["generation"]
        db.session.commit()
    return keys


def test_keys_name_their_rows():
    vid, oid = uuid.uuid4(), uuid.uuid4()
    assert owner_of(f"voices/system/{vid}")[1] == vid
    assert owner_of(f"voices/orgs/{oid}/{vid}.abc123")[1] == vid
    assert owner_of(f"generations/orgs/{oid}/{vid}")[1] == vid
    assert owner_of("voices/../../etc") is None


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_dry_run_lists_old_orphans_and_deletes_nothing(app, runner, objects):
    result = runner.invoke(args=["storage", "sweep"])
    assert result.exit_code == 0, result.output
    assert f"orphan  {objects['old_orphan']}" in result.output
    assert f"orphan  {objects['old_custom_revision']}" in result.output
    assert objects["new_orphan"] not in result.output
    assert "Scanned 7 objects: 3 in use, 2 orphaned, 1 too new to judge, 1 not Voxboard's." in (
        result.output
    )
    assert "run again with --delete" in result.output
    with app.app_context():
        assert all(get_storage().exists(k) for k in objects.values())


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_delete_removes_only_old_orphans(app, runner, objects):
    result = runner.invoke(args=["storage", "sweep", "--delete"])
    assert result.exit_code == 0, result.output
    assert "Deleted 2 orphaned objects." in result.output
    with app.app_context():
        storage = get_storage()
        gone = {"old_orphan", "old_custom_revision"}
        for name, key in objects.items():
            assert storage.exists(key) is (name not in gone), name


def test_grace_period_is_configurable(app, runner, objects):
    result = runner.invoke(args=["storage", "sweep", "--older-than", "0", "--delete"])
    assert "Deleted 3 orphaned objects." in result.output


def test_a_left_behind_readiness_probe_is_an_orphan(app, runner):
    with app.app_context():
        old = put(probe_key("voices"), 2 * HOUR)
        new = put(probe_key("generations"))
    result = runner.invoke(args=["storage", "sweep", "--delete"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 orphaned object" in result.output
    assert "not Voxboard's" not in result.output or "0 not Voxboard's" in result.output
    with app.app_context():
        assert not get_storage().exists(old) and get_storage().exists(new)
