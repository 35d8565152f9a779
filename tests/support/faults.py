"""Real faults for tests: terminate backends, stop and start a private PostgreSQL.

Tests inject them at a chosen point of a load through the inserter's hook
(``BatchInserter(hook=...)`` or ``BatchInserter.default_hook`` for whole DAG runs), so a
fault lands exactly where the test says, never racing the load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.pg import PgTarget


def terminate_backend(admin: PgTarget, conn: Any) -> bool:
    """``pg_terminate_backend`` the server process behind ``conn`` (a psycopg connection)."""
    pid = conn.info.backend_pid
    with admin.connect(autocommit=True) as own:
        return bool(own.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0])


def terminate_app_backends(admin: PgTarget, application_name: str) -> int:
    """``pg_terminate_backend`` every backend of ``application_name``; return how many."""
    with admin.connect(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


class PrivateServer:
    """An embedded PostgreSQL of the test's own, which the test may stop and start."""

    def __init__(self, pgdata: Path) -> None:
        from market_backfill_devtools import embedded

        self.server: Any = embedded.start(pgdata)
        self.target = PgTarget(embedded.socket_dir(self.server), None, "postgres", None, "postgres")

    def stop(self) -> None:
        with self.server._lock:
            self.server._stop()

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            import shutil

            shutil.rmtree(self.server.pgdata, ignore_errors=True)
