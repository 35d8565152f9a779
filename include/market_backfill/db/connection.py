"""Database connections and retried transactions.

Tasks open connections through Airflow's PostgresHook
(:func:`market_backfill.airflow.connections.hook_connector`), which hands out psycopg 3
whenever psycopg is importable (the postgres provider requires it); the lost-connection
errors of both drivers are recognised so the code stays right if a deployment pins
psycopg2.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from market_backfill.retry import Backoff

log = logging.getLogger(__name__)

T = TypeVar("T")


class Connection(Protocol):
    """What the library uses of a DB-API connection (psycopg 3 or psycopg2)."""

    autocommit: bool

    @property
    def closed(self) -> Any: ...

    def fileno(self) -> int: ...

    def cursor(self) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


Connector = Callable[[], Connection]
"""Hands out a connection on each call (through the hook in tasks, a URL in tests): a new
one, or with a :class:`ReusingConnector` one given back by :func:`release`."""


def _lost_connection_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = []
    try:
        import psycopg

        errors += [psycopg.OperationalError, psycopg.InterfaceError]
    except ImportError:  # pragma: no cover - the provider requires psycopg
        pass
    try:
        import psycopg2

        errors += [psycopg2.OperationalError, psycopg2.InterfaceError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


LOST_CONNECTION_ERRORS: tuple[type[BaseException], ...] = _lost_connection_errors()


def is_lost_connection(exc: BaseException) -> bool:
    """True when ``exc`` means the connection (or the server) went away: retry on a new one."""
    return isinstance(exc, LOST_CONNECTION_ERRORS)


TRANSACTION_BACKOFF = Backoff(attempts=5, base_s=1.0, max_s=30.0)


def run_transaction(
    connect: Connector,
    work: Callable[[Connection], T],
    *,
    backoff: Backoff = TRANSACTION_BACKOFF,
    what: str = "database work",
) -> T:
    """Run ``work(conn)`` on a connection from ``connect`` and commit: one transaction.

    On a lost connection (at connect, inside ``work`` or at commit) the connection is
    closed and the whole unit retried on a new one, so ``work`` must be idempotent; at
    most ``backoff.attempts`` tries, then the last error is raised. Any other error rolls
    back (the connection is closed uncommitted) and is raised at once. After a commit the
    connection is given back with :func:`release` (reused by a :class:`ReusingConnector`,
    else closed).
    """
    for attempt in range(1, backoff.attempts + 1):
        conn = None
        try:
            conn = connect()
            result = work(conn)
            conn.commit()
        except LOST_CONNECTION_ERRORS as exc:
            close_quietly(conn)
            if attempt == backoff.attempts:
                raise
            log.warning(
                "%s: connection lost (%s), attempt %d/%d, retrying in %.1fs",
                what,
                type(exc).__name__,
                attempt,
                backoff.attempts,
                backoff.delay(attempt),
            )
            backoff.wait(attempt)
            continue
        except BaseException:
            close_quietly(conn)
            raise
        release(connect, conn)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def release(connect: Connector, conn: Connection) -> None:
    """Give ``conn``, done with and outside any transaction, back to ``connect``: a
    :class:`ReusingConnector` keeps it for its next call, any other connector's
    connections are closed."""
    if isinstance(connect, ReusingConnector):
        connect.give_back(conn)
    else:
        close_quietly(conn)


def _idle_and_open(conn: Connection) -> bool:
    """True when ``conn`` is open and nothing arrived on its socket while idle: a server
    that ended the session (terminated, restarted, timed out) leaves a message or an
    end of file to read. No round trip."""
    try:
        if conn.closed:
            return False
        poller = select.poll()  # not select.select: no limit on the descriptor's number
        poller.register(conn.fileno(), select.POLLIN)
        ready = poller.poll(0)
    except Exception:  # noqa: BLE001 - a broken connection may fail in any way
        return False
    return not ready


class ReusingConnector:
    """A :data:`Connector` that reuses the connections given back to it: a task's
    transactions, one after another, go over one connection instead of one each.

    A connection comes back through :func:`release` (after a commit, outside any
    transaction); it is kept only when open, out of autocommit and rolled back to idle,
    and handed out again only when its socket shows the server did not end the session,
    it has been idle for less than ``idle_s`` and the process is the one that opened it
    (never across a fork). Lost connections are closed by their users and never come
    back. Thread-safe: a connection is lent to one caller at a time. :meth:`close` ends
    the idle connections (also at garbage collection and at interpreter exit)."""

    def __init__(self, connect: Connector, *, max_idle: int = 2, idle_s: float = 30.0) -> None:
        self._connect = connect
        self._max_idle = max_idle
        self._idle_s = idle_s
        self._idle: list[tuple[Connection, float, int]] = []  # (conn, idle since, its pid)
        self._lock = threading.Lock()
        self.opened = 0  # connections opened, for tests and logs
        weakref.finalize(self, _close_idle, self._idle)

    def __call__(self) -> Connection:
        now = time.monotonic()
        stale: list[Connection] = []
        found: Connection | None = None
        with self._lock:
            while self._idle:
                conn, since, pid = self._idle.pop()
                if pid != os.getpid():  # a forked child: the socket is the parent's
                    continue
                if now - since < self._idle_s and _idle_and_open(conn):
                    found = conn
                    break
                stale.append(conn)
        for conn in stale:
            close_quietly(conn)
        if found is not None:
            return found
        conn = self._connect()
        self.opened += 1
        return conn

    def give_back(self, conn: Connection) -> None:
        """Keep ``conn`` for the next call, or close it (broken, or enough kept)."""
        try:
            if conn.closed:
                return
            conn.rollback()  # no round trip when idle
            conn.autocommit = False
        except Exception:  # noqa: BLE001 - not reusable, whatever went wrong
            close_quietly(conn)
            return
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append((conn, time.monotonic(), os.getpid()))
                return
        close_quietly(conn)

    def close(self) -> None:
        """Close the idle connections (lent ones are their holders' to give back)."""
        with self._lock:
            _close_idle(self._idle)


def _close_idle(idle: list[tuple[Connection, float, int]]) -> None:
    """Close and forget ``idle`` connections (those of another process, before a fork,
    are only forgotten: their sockets are the parent's)."""
    kept, idle[:] = list(idle), []
    for conn, _, pid in kept:
        if pid == os.getpid():
            close_quietly(conn)


def first_value(row: Sequence[Any] | None) -> Any:
    """The first column of a fetched row, None when the query found no row."""
    return None if row is None else row[0]


def close_quietly(conn: Connection | None) -> None:
    """Close a connection that may already be broken."""
    if conn is None:
        return
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - a dead connection may fail in any way on close
        log.debug("ignored error while closing a broken connection", exc_info=True)
