"""Property-based fuzzing of the whole API with schemathesis, against a live server.

schemathesis reads the app's own OpenAPI document, generates valid and invalid
requests for every operation (bounded: a few dozen per operation, a time budget),
sends them over HTTP with a real key and checks each answer: never a 500, and every
response conforms to the document (status, content type, headers, body schema).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from flask import Flask

from tests.api.conftest import Tenant
from tests.api.live import serving

MAX_EXAMPLES = 20
MAX_SECONDS = 30
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def schemathesis() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is a dev dependency (pip install -e '.[dev]')"
    return [found]


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    app: Flask, tenant: Tenant, tmp_path: Path
):
    with serving(app) as url:
        done = subprocess.run(
            [
                *schemathesis(), "run", f"{url}/api/v1/openapi.json",
                "--url", url,
                "--header", f"Authorization: Bearer {tenant.secret}",
                "--checks", CHECKS,
                "--max-examples", str(MAX_EXAMPLES),
                "--max-time", str(MAX_SECONDS),
                "--workers", "1",
                "--seed", "20261207",
                "--generation-database", "none",
                "--no-color",
            ],
            cwd=tmp_path, capture_output=True, text=True, timeout=MAX_SECONDS * 3,
        )  # fmt: skip
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "passed" in done.stdout.lower(), report
