"""Database connections (through Airflow's PostgresHook) and schema set-up.

The hook hands out a psycopg 3 connection whenever psycopg is importable (the postgres
provider requires it); the lost-connection errors of both drivers are recognised so the
code stays right if a deployment pins psycopg2.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from market_backfill import sqlfiles

log = logging.getLogger(__name__)

MARKET_DB_CONN_ID = "market_db"

Connector = Callable[[], Any]
T = TypeVar("T")


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


def hook_connector(conn_id: str = MARKET_DB_CONN_ID) -> Connector:
    """A callable that opens a new connection through ``PostgresHook(postgres_conn_id=conn_id)``."""

    def connect() -> Any:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=conn_id).get_conn()

    return connect


def run_transaction(
    connect: Connector,
    work: Callable[[Any], T],
    *,
    attempts: int = 5,
    backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "database work",
) -> T:
    """Run ``work(conn)`` on a fresh connection and commit; on a lost connection retry the
    whole unit (so ``work`` must be idempotent) with exponential backoff. Always closes."""
    for attempt in range(1, attempts + 1):
        conn = None
        try:
            conn = connect()
            result = work(conn)
            conn.commit()
            return result
        except LOST_CONNECTION_ERRORS as exc:
            if attempt == attempts:
                raise
            delay = min(max_backoff_s, backoff_s * 2 ** (attempt - 1))
            log.warning(
                "%s: connection lost (%s), attempt %d/%d, retrying in %.1fs",
                what,
                type(exc).__name__,
                attempt,
                attempts,
                delay,
            )
            sleep(delay)
        finally:
            close_quietly(conn)
    raise AssertionError("unreachable")  # pragma: no cover


def close_quietly(conn: Any) -> None:
    """Close a connection that may already be broken."""
    if conn is None:
        return
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - a dead connection may fail in any way on close
        log.debug("ignored error while closing a broken connection", exc_info=True)


def apply_schema(conn: Any) -> None:
    """Create every table of the contract and preload the symbol registry.

    One transaction, serialised by an advisory lock: safe under concurrent DAG runs and
    idempotent (``CREATE ... IF NOT EXISTS``, ``ON CONFLICT DO NOTHING``).
    """
    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute(sqlfiles.load("schema"))
    conn.commit()
    log.info("schema applied in %.2fs", time.monotonic() - started)
