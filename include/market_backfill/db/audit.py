"""The ``backfill_runs`` audit trail: one row per chunk of a DAG run.

Each write is its own short transaction (an upsert keyed by dag_id, run_id, symbol,
chunk), so a cleared and re-run chunk updates its row and counts the attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from market_backfill.db.connection import Connection, Connector, run_transaction

_START_SQL = """
INSERT INTO backfill_runs (dag_id, run_id, symbol, chunk, status, started_at)
VALUES (%s, %s, %s, %s, 'running', now())
ON CONFLICT (dag_id, run_id, symbol, chunk) DO UPDATE
SET status = 'running', started_at = now(), finished_at = NULL, error = NULL,
    attempts = backfill_runs.attempts + 1
"""

_FINISH_SQL = """
INSERT INTO backfill_runs (dag_id, run_id, symbol, chunk, status, counts, error, finished_at)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, now())
ON CONFLICT (dag_id, run_id, symbol, chunk) DO UPDATE
SET status = EXCLUDED.status, counts = EXCLUDED.counts, error = EXCLUDED.error,
    finished_at = now()
"""

_STOP_SQL = """
SELECT error FROM backfill_runs
WHERE dag_id = %s AND run_id = %s AND symbol = '*' AND chunk = %s
"""
_CLEAR_STOP_SQL = """
DELETE FROM backfill_runs WHERE dag_id = %s AND run_id = %s AND symbol = '*' AND chunk = %s
"""

_RUN_ROWS_SQL = """
SELECT symbol, chunk, status, counts, attempts, error
FROM backfill_runs WHERE dag_id = %s AND run_id = %s AND symbol <> '*'
ORDER BY symbol, chunk
"""


def record_start(
    connect: Connector, dag_id: str, run_id: str, symbol: str, chunk: str
) -> str | None:
    """Mark a chunk as running (a re-run increments ``attempts``); return why the run was
    stopped (:func:`record_stop`), or None. One short transaction."""

    def work(conn: Connection) -> str | None:
        with conn.cursor() as cur:
            cur.execute(_START_SQL, (dag_id, run_id, symbol, chunk))
            cur.execute(_STOP_SQL, (dag_id, run_id, STOP_CHUNK))
            row = cur.fetchone()
        return row[0] if row else None

    return run_transaction(connect, work, what="backfill_runs start")


def record_finish(
    connect: Connector,
    dag_id: str,
    run_id: str,
    symbol: str,
    chunk: str,
    status: str,
    counts: Mapping[str, Any],
    error: str | None = None,
) -> None:
    """Store a chunk's final status, counts and (truncated) error."""

    def work(conn: Connection) -> None:
        with conn.cursor() as cur:
            cur.execute(
                _FINISH_SQL,
                (
                    dag_id,
                    run_id,
                    symbol,
                    chunk,
                    status,
                    json.dumps(dict(counts), default=str),
                    error[:2000] if error else None,
                ),
            )

    run_transaction(connect, work, what="backfill_runs finish")


def run_rows(connect: Connector, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """All chunk rows of one DAG run."""

    def work(conn: Connection) -> list[dict[str, Any]]:
        with conn.cursor() as cur:
            cur.execute(_RUN_ROWS_SQL, (dag_id, run_id))
            return [
                {
                    "symbol": r[0],
                    "chunk": r[1],
                    "status": r[2],
                    "counts": r[3] or {},
                    "attempts": r[4],
                    "error": r[5],
                }
                for r in cur.fetchall()
            ]

    return run_transaction(connect, work, what="backfill_runs read")


ESTIMATE_ROW = ("*", "estimate")
"""The row (symbol, chunk) of a run's Databento estimate (its pre-flight)."""

STOP_CHUNK = "stop"
"""The ``chunk`` of a run's stop row (symbol ``*``): set by an error no chunk of the run
can escape (a rejected API key), returned by :func:`record_start` to every later chunk,
lifted by the run's summary (:func:`clear_stop`)."""


def record_stop(connect: Connector, dag_id: str, run_id: str, reason: str) -> None:
    """Stop the run: its later chunks fail at once, without touching the source."""
    record_finish(connect, dag_id, run_id, "*", STOP_CHUNK, "failed", {}, reason)


def clear_stop(connect: Connector, dag_id: str, run_id: str) -> None:
    """Lift the run's stop, so that chunks cleared after a fix run again."""

    def work(conn: Connection) -> None:
        with conn.cursor() as cur:
            cur.execute(_CLEAR_STOP_SQL, (dag_id, run_id, STOP_CHUNK))

    run_transaction(connect, work, what="backfill_runs stop")


_COUNTS_SQL = """
SELECT counts FROM backfill_runs
WHERE dag_id = %s AND run_id = %s AND symbol = %s AND chunk = %s
"""


def read_counts(
    connect: Connector, dag_id: str, run_id: str, symbol: str, chunk: str
) -> dict[str, Any] | None:
    """The counts stored for one row of the run (e.g. ``*``/``estimate``), or None."""

    def work(conn: Connection) -> dict[str, Any] | None:
        with conn.cursor() as cur:
            cur.execute(_COUNTS_SQL, (dag_id, run_id, symbol, chunk))
            row = cur.fetchone()
        return row[0] if row else None

    return run_transaction(connect, work, what="backfill_runs read")
