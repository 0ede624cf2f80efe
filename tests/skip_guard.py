"""With REQUIRE_NO_SKIPS=1 (CI sets it) a run that skipped anything fails.

The REQUIRE_POSTGRES/BROWSER/REDIS switches turn the known skips into failures; this
catches every other skip too (a new `pytest.skip`, a fixture that skips on a
connection error), so CI can't go green on a suite that didn't run. Loaded for every
run through `addopts` in pyproject.toml.
"""

from __future__ import annotations

import os

import pytest

_skipped: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("REQUIRE_NO_SKIPS") != "1" or not _skipped:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", f"REQUIRE_NO_SKIPS=1 but {len(_skipped)} tests skipped", red=True)
        for nodeid, reason in _skipped:
            reporter.write_line(f"{nodeid}: {reason}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
