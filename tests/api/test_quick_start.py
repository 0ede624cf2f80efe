"""The README's API quick start, run as it is printed, against a live server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import wave
from pathlib import Path

from flask import Flask

from dashboard import PROJECT_ROOT
from tests.api.conftest import Tenant
from tests.api.live import serving


def quick_start_block() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the API section has one shell block: the quick start"
    return blocks[0]


def test_the_readme_quick_start_speaks_and_downloads(app: Flask, tenant: Tenant, tmp_path: Path):
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"the quick start needs {tool} (.ci/run installs it)"
    script = quick_start_block()
    with serving(app) as url:
        env = {**os.environ, "VOXBOARD_URL": url, "VOXBOARD_API_KEY": tenant.secret}
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    assert re.search(r"generation [0-9a-f-]{36}: succeeded", done.stdout)
    assert '"used": ' in done.stdout  # the usage, printed by jq
    with wave.open(str(tmp_path / "hello.wav")) as audio:
        assert audio.getnframes() > audio.getframerate() // 2  # over half a second of speech


def test_the_quick_start_says_what_to_do_without_a_key(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "VOXBOARD_API_KEY"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", quick_start_block()],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0
    assert "create a key under API keys" in done.stderr
