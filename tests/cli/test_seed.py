"""`flask seed`: 20 system voices with audio, idempotent, safe under concurrency and failure."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from sqlalchemy import func, select, update

from dashboard import PROJECT_ROOT
from dashboard.extensions import db
from dashboard.models import Voice, VoiceVariant
from dashboard.storage import LocalStorage, StorageUnavailable, system_voice_key
from dashboard.tts.catalog import SYSTEM_VOICES
from tests.databases import BACKENDS, make_config

PROJECT = PROJECT_ROOT


def voice_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Voice))


def stored_objects(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_seed_twice_gives_twenty_voices_and_second_run_changes_nothing(app, runner, tmp_path):
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    assert "20 created" in first.output and "20 audio files uploaded" in first.output

    with app.app_context():
        voices = db.session.scalars(select(Voice).order_by(Voice.name)).all()
        assert [v.name for v in voices] == sorted(s.name for s in SYSTEM_VOICES)
        assert all(v.variant is VoiceVariant.SYSTEM and v.org_id is None for v in voices)
        assert all(v.audio_key == system_voice_key(v.id) for v in voices)
        ivan = next(v for v in voices if v.name == "Ivan")
        assert ivan.language == "ru-RU"
        assert all(5_000 <= v.audio_duration_ms <= 20_000 for v in voices), [
            (v.name, v.audio_duration_ms) for v in voices
        ]
        stamps = {v.name: v.updated_at for v in voices}
    assert len(stored_objects(tmp_path / "objects")) == 20

    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0, second.output
    assert "Nothing to do: all 20 system voices are up to date." in second.output
    with app.app_context():
        assert voice_count() == 20
        assert {v.name: v.updated_at for v in db.session.scalars(select(Voice))} == stamps


def test_seed_repairs_changed_metadata_and_missing_audio(app, runner, tmp_path):
    assert runner.invoke(args=["seed"]).exit_code == 0
    with app.app_context():
        db.session.execute(update(Voice).where(Voice.name == "Gavin").values(description="x"))
        walter = db.session.scalars(select(Voice).where(Voice.name == "Walter")).one()
        db.session.commit()
        (tmp_path / "objects" / walter.audio_key).unlink()

    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert "updated   Gavin" in result.output and "updated   Walter" in result.output
    assert "0 created, 2 updated, 18 unchanged; 1 audio files uploaded" in result.output
    assert (tmp_path / "objects" / walter.audio_key).is_file()


def test_seed_from_audio_dir_uploads_those_files(app, runner, tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    rate = 16_000
    for i, spec in enumerate(SYSTEM_VOICES):
        tone = 0.2 * np.sin(2 * np.pi * (220 + 10 * i) * np.arange(rate * 11) / rate)
        soundfile.write(pack / f"{spec.name}.wav", tone, rate, subtype="PCM_16")

    result = runner.invoke(args=["seed", "--audio-dir", str(pack)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        aaron = db.session.scalars(select(Voice).where(Voice.name == "Aaron")).one()
        assert aaron.audio_duration_ms == 11_000
    stored = (tmp_path / "objects" / aaron.audio_key).read_bytes()
    assert stored == (pack / "Aaron.wav").read_bytes()


def test_seed_audio_dir_missing_files_is_a_clear_error(app, runner, tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "Aaron.wav").write_bytes(b"RIFF")
    result = runner.invoke(args=["seed", "--audio-dir", str(pack)])
    assert result.exit_code != 0
    assert "has no WAV file for: Abigail" in result.output
    with app.app_context():
        assert voice_count() == 0


def test_seed_rejects_a_file_that_is_not_audio(app, runner, tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    for spec in SYSTEM_VOICES:
        buf = io.BytesIO()
        soundfile.write(buf, np.zeros(16_000), 16_000, format="WAV")
        (pack / f"{spec.name}.wav").write_bytes(buf.getvalue())
    (pack / "Meera.wav").write_text("definitely not a wave file")
    result = runner.invoke(args=["seed", "--audio-dir", str(pack)])
    assert result.exit_code != 0
    assert (
        "reference audio for Meera" in result.output
        and "could not be read as audio" in result.output
    )


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_seed_with_unreachable_storage_fails_clearly_and_leaves_nothing(app, runner, storage_down):
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert (
        lines[-1].startswith("Error: seed failed:")
        and storage_down.removeprefix("http://") in lines[-1]
    )
    assert "Traceback" not in result.output
    with app.app_context():
        assert voice_count() == 0


class FailingStorage(LocalStorage):
    """Real local storage whose n-th upload fails, to exercise the rollback path."""

    def __init__(self, root: Path, fail_on: int) -> None:
        super().__init__(root)
        self.puts = 0
        self.fail_on = fail_on

    def put(self, key, stream, *, content_type=None):
        self.puts += 1
        if self.puts == self.fail_on:
            raise StorageUnavailable("bucket 'voices' refused the upload (injected)")
        return super().put(key, stream, content_type=content_type)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_seed_failing_half_way_leaves_no_voice_and_no_object(app, runner, tmp_path):
    root = tmp_path / "objects"
    app.extensions["voxboard.storage"] = FailingStorage(root, fail_on=7)
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 1
    assert "Error: seed failed: bucket 'voices' refused the upload (injected)" in result.output
    with app.app_context():
        assert voice_count() == 0
    assert stored_objects(root) == []


def test_seed_without_migrations_says_what_to_do(tmp_path):
    from dashboard import create_app

    app = create_app(make_config(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path))
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 1
    assert "run `flask db upgrade` first" in result.output


def test_seed_with_unreachable_database_fails_clearly(tmp_path):
    from dashboard import create_app

    url = "postgresql+psycopg://nobody:secret@127.0.0.1:9/none"
    app = create_app(make_config(url, tmp_path))
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 1
    assert (
        "database unreachable (postgresql+psycopg://nobody:***@127.0.0.1:9/none)" in result.output
    )
    assert "secret" not in result.output


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_concurrent_seeds_on_postgresql_end_with_twenty_voices(app, pg_schema, tmp_path):
    env = {
        **os.environ,
        "FLASK_APP": "wsgi",
        "DATABASE_URL": pg_schema,
        "SECRET_KEY": "concurrency",
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_ROOT": str(tmp_path / "objects"),
    }
    flask = [sys.executable, "-m", "flask", "seed"]
    procs = [
        subprocess.Popen(
            flask, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sum("20 created" in out for out in outputs) == 1, outputs
    assert sum("Nothing to do" in out for out in outputs) == 1, outputs
    with app.app_context():
        assert voice_count() == 20
    assert len(stored_objects(tmp_path / "objects")) == 20
