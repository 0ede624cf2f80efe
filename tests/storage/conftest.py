"""Every storage test runs with fake AWS credentials and no shared config or proxy, so
boto3 can never reach a real account or pick up this machine's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.s3server import isolate_aws_env


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws_env(monkeypatch, tmp_path)
