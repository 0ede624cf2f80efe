"""Real database faults for tests: terminate the app's PostgreSQL backend on cue.

`pg_terminate_backend` ends the server process of a connection exactly as a DBA, a
failover or an out-of-memory kill would; the statement (or COMMIT) then runs on a dead
connection and the driver raises what production would see.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from dashboard.extensions import db


def kill_backend(killer: Engine, pid: int) -> None:
    """Terminate backend `pid` and wait until the server has really let it go."""
    # Autocommit: pg_stat_activity is snapshotted once per transaction otherwise.
    with killer.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 10
        while admin.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
        ):
            assert time.monotonic() < deadline, "the backend outlived pg_terminate_backend"
            time.sleep(0.02)


@contextmanager
def terminate_backend_when(
    app: Flask,
    killer: Engine,
    *,
    statement: Callable[[str], bool] | None = None,
    commit: Callable[[], bool] | None = None,
) -> Iterator[list[str]]:
    """Kill the app's backend at the first statement `statement` accepts, else at COMMIT.

    With neither, the first COMMIT is the cue; `commit` narrows it to the COMMIT for
    which it answers True. `killer` must be allowed to terminate the app's backends
    (the same role, or a superuser). Yields the list of cues that fired.
    """
    fired: list[str] = []

    def kill(conn) -> None:  # type: ignore[no-untyped-def]
        kill_backend(killer, conn.connection.dbapi_connection.info.backend_pid)

    def before_execute(conn, _cursor, sql, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if not fired and statement is not None and statement(sql):
            fired.append(sql)
            kill(conn)

    def before_commit(conn) -> None:  # type: ignore[no-untyped-def]
        if not fired and statement is None and (commit is None or commit()):
            fired.append("COMMIT")
            kill(conn)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", before_commit)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", before_execute)
        event.remove(engine, "commit", before_commit)
