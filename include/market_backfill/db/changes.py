"""The log of writes to the clean bars (``bar_changes``), for the stages derived from them.

A chunk logs the range it is about to write (:func:`log_write`, its own transaction,
committed before the write) and then how many rows it wrote (:func:`confirm_write`). A
write that died before confirming stays NULL and counts as a change: recomputing an
unchanged range costs time, never correctness.
"""

from __future__ import annotations

from datetime import datetime

from psycopg import sql

from market_backfill.db.connection import Connection
from market_backfill.symbols import Series

_LOG = """
INSERT INTO bar_changes (symbol, roll_rule, rank, first_ts, last_ts)
VALUES (%s, %s, %s, %s, %s) RETURNING id
"""
_CONFIRM = "UPDATE bar_changes SET rows_written = %s WHERE id = %s"
_CHANGED_SINCE = """
SELECT min(first_ts), max(last_ts), max(id) FROM bar_changes
WHERE symbol = %s AND roll_rule = %s AND rank = %s AND id > %s
  AND (rows_written IS NULL OR rows_written > 0)
"""


def log_write(conn: Connection, series: Series, first: datetime, last: datetime) -> int:
    """Log that bars of ``series`` from ``first`` to ``last`` (both included) are about to
    be written; return the entry's id."""
    with conn.cursor() as cur:
        cur.execute(_LOG, (*series.key, first, last))
        return int(cur.fetchone()[0])


def confirm_write(conn: Connection, change_id: int, rows_written: int) -> None:
    """Record how many rows the logged write inserted or changed (0: nothing changed)."""
    with conn.cursor() as cur:
        cur.execute(_CONFIRM, (rows_written, change_id))


def changed_since(
    conn: Connection, series: Series, after_id: int
) -> tuple[datetime, datetime, int] | None:
    """(first, last, newest id) over the changes of ``series`` logged after ``after_id``
    that changed rows (or may have), or None."""
    with conn.cursor() as cur:
        cur.execute(_CHANGED_SINCE, (*series.key, after_id))
        first, last, newest = cur.fetchone()
    return None if newest is None else (first, last, int(newest))


_PROGRESS_READ = """
SELECT last_change_id FROM {}
WHERE symbol = %s AND roll_rule = %s AND rank = %s AND settings_key = %s
"""
_PROGRESS_PENDING = """
INSERT INTO {} (symbol, roll_rule, rank, settings_key, pending_change_id)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (symbol, roll_rule, rank, settings_key) DO UPDATE
SET pending_change_id = EXCLUDED.pending_change_id, updated_at = now()
"""
_PROGRESS_CONFIRM = """
UPDATE {} SET last_change_id = pending_change_id, pending_change_id = NULL, updated_at = now()
WHERE symbol = %s AND roll_rule = %s AND rank = %s AND settings_key = %s
  AND pending_change_id IS NOT NULL
"""


def absorbed_change(conn: Connection, table: str, series: Series, key: str) -> int:
    """The newest bar change of ``series`` that ``key`` has absorbed in ``table`` (0: none)."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL(_PROGRESS_READ).format(sql.Identifier(table)), (*series.key, key))
        row = cur.fetchone()
    return int(row[0]) if row else 0


def note_pending(conn: Connection, table: str, series: Series, key: str, change_id: int) -> None:
    """A catch-up run covers the changes up to ``change_id``; it is theirs once it succeeds."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(_PROGRESS_PENDING).format(sql.Identifier(table)), (*series.key, key, change_id)
        )


def confirm_pending(conn: Connection, table: str, series: Series, key: str) -> None:
    """The catch-up run succeeded: the changes it covered are absorbed."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL(_PROGRESS_CONFIRM).format(sql.Identifier(table)), (*series.key, key))
