"""The suite can't go green by skipping: only the parts that need a missing tool skip.

Runs pytest itself in a subprocess, as a fresh machine would, with Chromium made
unavailable: the browser tests must skip and say why, and nothing else may.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from dashboard import PROJECT_ROOT

ROOT = PROJECT_ROOT


def run_pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REQUIRE_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def counts(output: str) -> dict[str, int]:
    summary = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed|error)", summary)}


def test_without_chromium_only_the_browser_tests_skip():
    done = run_pytest(
        "tests/app/test_config.py", "tests/e2e/test_home.py", CHROMIUM_PATH="/nonexistent/chromium"
    )
    seen = counts(done.stdout)
    collected = run_pytest("--co", "tests/e2e/test_home.py").stdout
    browser_tests = len([line for line in collected.splitlines() if "::" in line])
    assert browser_tests > 0
    assert seen.get("skipped") == browser_tests, done.stdout
    assert seen.get("passed", 0) > 0 and "failed" not in seen, done.stdout
    assert "browser tests skipped: /nonexistent/chromium not found" in done.stdout
    assert "tests/app/test_config.py" not in "\n".join(
        line for line in done.stdout.splitlines() if line.startswith("SKIPPED")
    )


def test_require_browser_turns_the_skip_into_a_failure():
    done = run_pytest(
        "tests/e2e/test_home.py", CHROMIUM_PATH="/nonexistent/chromium", REQUIRE_BROWSER="1"
    )
    assert done.returncode != 0
    assert "REQUIRE_BROWSER=1 but /nonexistent/chromium is missing" in done.stdout + done.stderr


def test_require_no_skips_fails_a_run_that_skipped_anything():
    done = run_pytest(
        "tests/e2e/test_home.py", CHROMIUM_PATH="/nonexistent/chromium", REQUIRE_NO_SKIPS="1"
    )
    assert done.returncode == 1, done.stdout
    assert "REQUIRE_NO_SKIPS=1 but" in done.stdout and "tests skipped" in done.stdout
    assert "tests/e2e/test_home.py::" in done.stdout


def test_a_run_without_skips_passes_with_require_no_skips():
    done = run_pytest("tests/app/test_config.py", REQUIRE_NO_SKIPS="1")
    assert done.returncode == 0, done.stdout
