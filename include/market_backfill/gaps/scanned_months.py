"""Scanned months kept in the database: a gap scan reads only the months written since.

What a scan finds in a whole UTC month of a series (the month's trading minutes without a
bar, as int64 ``(first minute ns, minutes)`` runs) is kept in ``gap_scan_months`` with
the number ``bar_month_counts.changed`` had when the month's bars were read. The clean
bars' triggers give that column a new number of a sequence whenever the month's set of
stored minutes changes (an insert, a delete, a key update even inside the month, a
truncate), and never an old one again. A later scan on the same calendar version
(:func:`~market_backfill.trading_calendar.calendar_version`) takes the kept result while
the number holds and reads the month otherwise; a month without bars is not read at all.

No lock is needed against concurrent writers: a month's number is read before its bars,
so a kept result is at worst newer than its number, and that number has then already
moved on: the result is never taken.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from market_backfill.db.connection import Connection
from market_backfill.db.schema import load_sql
from market_backfill.minute_runs import minutes_of, runs_of
from market_backfill.symbols import Series

log = logging.getLogger(__name__)

_RUN = np.dtype(">i8")


@dataclass(frozen=True)
class MonthState:
    """A month of a series holding bars: its change number and, when a scan on the
    calendar was kept under that number, the trading minutes it found missing."""

    changed: int
    missing: np.ndarray | None  # sorted int64 ns; None: not kept (or no longer holds)


def encode_runs(minutes: np.ndarray) -> bytes:
    """Sorted int64 ns minutes as their runs: big-endian int64 (first, count) pairs."""
    return np.stack(runs_of(minutes), axis=1).astype(_RUN).tobytes()


def decode_runs(data: bytes) -> np.ndarray:
    """The minutes of :func:`encode_runs`'s runs (sorted int64 ns)."""
    runs = np.frombuffer(data, dtype=_RUN).astype(np.int64).reshape(-1, 2)
    return minutes_of(runs[:, 0], runs[:, 1])


def _params(series: Series, calendar: str) -> dict[str, object]:
    symbol, roll_rule, rank = series.key
    return {"symbol": symbol, "roll_rule": roll_rule, "rank": rank, "calendar": calendar}


def month_states(
    conn: Connection, series: Series, calendar: str, first: date, stop: date
) -> dict[date, MonthState]:
    """The months in ``[first, stop)`` (month starts) holding bars of ``series``, with
    what a scan on ``calendar`` kept there under the current change number. One query,
    in the caller's transaction; read before the months' bars (see the module)."""
    with conn.cursor() as cur:
        cur.execute(
            load_sql("gap_scan_months_read"),
            {**_params(series, calendar), "first": first, "stop": stop},
        )
        rows = cur.fetchall()
    return {
        month: MonthState(int(changed), None if kept is None else decode_runs(kept))
        for month, changed, kept in rows
    }


def keep_months(
    conn: Connection,
    series: Series,
    calendar: str,
    found: Sequence[tuple[date, int, np.ndarray]],
) -> None:
    """Keep what a scan found in whole months, each ``(month start, change number it read
    the bars under, missing minutes)``. One statement in the caller's transaction (its
    commit keeps them)."""
    if not found:
        return
    months, changed, missing = zip(*found, strict=True)
    with conn.cursor() as cur:
        cur.execute(
            load_sql("gap_scan_months_keep"),
            {
                **_params(series, calendar),
                "months": list(months),
                "changed": list(changed),
                "missing": [encode_runs(m) for m in missing],
            },
        )
    log.debug("kept the scans of %d months", len(found))
