"""Real faults for tests: terminate backends, stop and start a private PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.pg import PgTarget


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
        from market_backfill import embedded

        self.server: Any = embedded.start(pgdata)
        self.target = PgTarget(embedded.socket_dir(self.server), None, "postgres", None, "postgres")

    def stop(self) -> None:
        with self.server._lock:
            self.server._stop()

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()

    def start_later(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.start)
        timer.start()
        return timer

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            import shutil

            shutil.rmtree(self.server.pgdata, ignore_errors=True)


def rows_with_actions(rows: list[tuple], actions: dict[int, Any]) -> Iterator[tuple]:
    """Yield ``rows``; before yielding row ``i`` run ``actions[i]()`` (in the consumer's
    thread, so a fault lands exactly between two batches being formed)."""
    for i, row in enumerate(rows):
        if i in actions:
            actions[i]()
        yield row
