"""Gap detection against the symbol's trading calendar, vectorised.

Expected minutes come from the calendar's schedule (every minute from each session's
open to its close, close excluded); stored minutes from one indexed range query per
symbol and month, read as binary COPY straight into numpy. A gap is a maximal run of
missing minutes, consecutive in time (so it never spans a close, a break, a weekend or
a holiday), at least ``min_gap_minutes`` long.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from psycopg import sql

from market_backfill.db.connection import Connection
from market_backfill.db.copy_binary import read_timestamps
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill.names import MINUTE_NS
from market_backfill.planning import month_starts
from market_backfill.symbols import Series
from market_backfill.timeutil import from_ns
from market_backfill.trading_calendar import trading_minutes


def stored_minutes(conn: Connection, series: Series, start: datetime, end: datetime) -> np.ndarray:
    """Open times (int64 ns, sorted) of stored bars of ``series`` in ``[start, end)``: one
    index range scan per month, sent as one binary value and decoded by numpy without a
    Python loop (:func:`~market_backfill.db.copy_binary.read_timestamps`)."""
    query = sql.SQL(
        "SELECT ts FROM {} WHERE symbol = {} AND roll_rule = {} AND rank = {} "
        "AND ts >= {} AND ts < {} ORDER BY ts"
    )
    key = [sql.Literal(v) for v in series.key]
    parts = []
    bounds = [*month_starts(start, end), end]
    with conn.cursor() as cur:
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            stmt = query.format(sql.Identifier(CLEAN_TABLE), *key, sql.Literal(lo), sql.Literal(hi))
            parts.append(read_timestamps(cur, stmt))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class Gap:
    """A run of missing trading minutes of one series: ``[start_ns, end_ns)``."""

    series: Series
    start_ns: int
    end_ns: int  # exclusive: open time of the first minute after the gap

    @property
    def minutes(self) -> int:
        return (self.end_ns - self.start_ns) // MINUTE_NS

    def to_dict(self) -> dict[str, Any]:
        """The gap as it travels through XCom (a repair task's argument)."""
        start = from_ns(self.start_ns)
        return {
            "symbol": self.series.symbol.key,
            "roll_rule": self.series.roll_rule,
            "rank": self.series.rank,
            "gap_start": start.isoformat(),
            "gap_end": from_ns(self.end_ns).isoformat(),
            "minutes": self.minutes,
            "label": f"{self.series.symbol.root} {start:%Y-%m-%d %H:%M} ({self.minutes}m)",
        }


def present_mask(expected: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """Which expected minutes have a stored bar: a bitmap over the range's minutes, O(n)."""
    if len(expected) == 0:
        return np.zeros(0, dtype=bool)
    base = int(expected[0])
    size = int((expected[-1] - base) // MINUTE_NS) + 1
    offsets = stored - base
    ok = (offsets >= 0) & (offsets % MINUTE_NS == 0) & (offsets < size * MINUTE_NS)
    bitmap = np.zeros(size, dtype=bool)
    bitmap[offsets[ok] // MINUTE_NS] = True
    return bitmap[(expected - base) // MINUTE_NS]


def missing_runs(expected: np.ndarray, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, count) of each maximal run of expected minutes absent from ``stored``."""
    return runs_of(expected[~present_mask(expected, stored)])


def runs_of(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, count) of each maximal run of consecutive minutes in sorted ``missing``."""
    if len(missing) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(missing) != MINUTE_NS) + 1
    starts = np.concatenate([[0], breaks])
    counts = np.diff(np.concatenate([starts, [len(missing)]]))
    return missing[starts], counts


def find_gaps(
    series: Series, expected: np.ndarray, stored: np.ndarray, min_gap_minutes: int
) -> list[Gap]:
    """Gaps of at least ``min_gap_minutes`` (runs are consecutive in time, so a run never
    spans a session boundary: the calendar has no minute there)."""
    return _long_runs(series, *missing_runs(expected, stored), min_gap_minutes)


def _long_runs(
    series: Series, first: np.ndarray, counts: np.ndarray, min_gap_minutes: int
) -> list[Gap]:
    keep = counts >= min_gap_minutes
    return [
        Gap(series, int(f), int(f) + int(n) * MINUTE_NS)
        for f, n in zip(first[keep], counts[keep], strict=True)
    ]


@dataclass
class Scan:
    """One series' scan of a range: its gaps and per-month completeness."""

    series: Series
    gaps: list[Gap]
    months: list[dict[str, Any]]
    seconds: float


def scan(
    conn: Connection,
    series: Series,
    calendar: str,
    start: datetime,
    end: datetime,
    min_gap_minutes: int,
) -> Scan:
    """Compare stored bars with the calendar over ``[start, end)``."""
    started = time.monotonic()
    expected = trading_minutes(calendar, start, end)
    present = present_mask(expected, stored_minutes(conn, series, start, end))
    gaps = _long_runs(series, *runs_of(expected[~present]), min_gap_minutes)
    months = completeness(expected, present, gaps)
    return Scan(series, gaps, months, round(time.monotonic() - started, 3))


def completeness(
    expected: np.ndarray, present: np.ndarray, gaps: Sequence[Gap]
) -> list[dict[str, Any]]:
    """Per calendar month: expected trading minutes, stored bars on them (``present``:
    :func:`present_mask`), percent, gaps."""
    if len(expected) == 0:
        return []
    months = expected.astype("datetime64[ns]").astype("datetime64[M]")  # sorted: expected is
    change = np.empty(len(months), dtype=bool)
    change[0] = True
    change[1:] = months[1:] != months[:-1]
    labels = months[change]
    month_idx = np.cumsum(change) - 1
    exp = np.bincount(month_idx, minlength=len(labels))
    got = np.bincount(month_idx, weights=present, minlength=len(labels))
    gap_months = (
        np.array([g.start_ns for g in gaps], dtype=np.int64)
        .astype("datetime64[ns]")
        .astype("datetime64[M]")
    )
    n_gaps = np.bincount(np.searchsorted(labels, gap_months), minlength=len(labels))
    return [
        {
            "month": str(m),
            "expected": int(e),
            "stored": int(g),
            "percent": round(100.0 * g / e, 2) if e else 100.0,
            "gaps": int(n),
        }
        for m, e, g, n in zip(labels, exp, got, n_gaps[: len(labels)], strict=True)
    ]
