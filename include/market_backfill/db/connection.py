"""Database connections and retried transactions.

Tasks open connections through Airflow's PostgresHook
(:func:`market_backfill.airflow.connections.hook_connector`), which hands out psycopg 3
whenever psycopg is importable (the postgres provider requires it); the lost-connection
errors of both drivers are recognised so the code stays right if a deployment pins
psycopg2.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from market_backfill.retry import Backoff

log = logging.getLogger(__name__)

T = TypeVar("T")


class Connection(Protocol):
    """What the library uses of a DB-API connection (psycopg 3 or psycopg2)."""

    autocommit: bool

    def cursor(self) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


Connector = Callable[[], Connection]
"""Opens a new connection on each call (through the hook in tasks, a URL in tests)."""


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
    """Run ``work(conn)`` on a fresh connection and commit: one transaction.

    On a lost connection (at connect, inside ``work`` or at commit) the whole unit is
    retried on a new connection, so ``work`` must be idempotent; at most
    ``backoff.attempts`` tries, then the last error is raised. Any other error rolls back
    (the connection is closed uncommitted) and is raised at once. Always closes.
    """
    for attempt in range(1, backoff.attempts + 1):
        conn = None
        try:
            conn = connect()
            result = work(conn)
            conn.commit()
            return result
        except LOST_CONNECTION_ERRORS as exc:
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
        finally:
            close_quietly(conn)
    raise AssertionError("unreachable")  # pragma: no cover


def close_quietly(conn: Connection | None) -> None:
    """Close a connection that may already be broken."""
    if conn is None:
        return
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - a dead connection may fail in any way on close
        log.debug("ignored error while closing a broken connection", exc_info=True)
