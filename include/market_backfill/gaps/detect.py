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
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from psycopg import sql

from market_backfill.db.connection import Connection
from market_backfill.db.copy_binary import read_timestamps
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill.gaps.scanned_months import keep_months, month_states
from market_backfill.minute_runs import runs_of
from market_backfill.names import MINUTE_NS
from market_backfill.planning import month_starts, next_month
from market_backfill.symbols import Series
from market_backfill.timeutil import from_ns, to_ns
from market_backfill.trading_calendar import calendar_version, trading_minutes

_MONTH_READ = sql.SQL(
    "SELECT ts FROM {} WHERE symbol = {} AND roll_rule = {} AND rank = {} "
    "AND ts >= {} AND ts < {} ORDER BY ts"
)


def _read_range(cur: Any, series: Series, lo: datetime, hi: datetime) -> np.ndarray:
    key = [sql.Literal(v) for v in series.key]
    stmt = _MONTH_READ.format(sql.Identifier(CLEAN_TABLE), *key, sql.Literal(lo), sql.Literal(hi))
    return read_timestamps(cur, stmt)


def _month_bounds(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    bounds = [*month_starts(start, end), end]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def stored_minutes(conn: Connection, series: Series, start: datetime, end: datetime) -> np.ndarray:
    """Open times (int64 ns, sorted) of stored bars of ``series`` in ``[start, end)``: one
    index range scan per month, sent as one binary value and decoded by numpy without a
    Python loop (:func:`~market_backfill.db.copy_binary.read_timestamps`)."""
    with conn.cursor() as cur:
        parts = [_read_range(cur, series, lo, hi) for lo, hi in _month_bounds(start, end)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _whole_month(lo: datetime, hi: datetime) -> date | None:
    """``lo``'s month when ``[lo, hi)`` is all of it (UTC months), else None."""
    lo, hi = lo.astimezone(UTC), hi.astimezone(UTC)
    month = date(lo.year, lo.month, 1)
    after = next_month(month)
    whole = lo == datetime(lo.year, lo.month, 1, tzinfo=UTC) and hi == datetime(
        after.year, after.month, 1, tzinfo=UTC
    )
    return month if whole else None


@dataclass(frozen=True)
class Presence:
    """Which expected minutes have a stored bar, and how the months were learnt."""

    present: np.ndarray  # bool, one per expected minute
    read: int  # months whose bars were read
    kept: int  # whole months taken from an earlier scan (scanned_months)
    empty: int  # whole months without bars: nothing to read


def presence(
    conn: Connection,
    series: Series,
    calendar: str,
    start: datetime,
    end: datetime,
    expected: np.ndarray,
) -> Presence:
    """Which of ``expected`` (the trading minutes of ``[start, end)``) have a stored bar.
    Whole UTC months come from :mod:`~market_backfill.gaps.scanned_months` while their
    bars are unchanged, and are not read when they hold none; the others are read (one
    range scan each) and whole ones kept for the next scan. Runs in the caller's
    transaction (its commit keeps the months read)."""
    present = np.zeros(len(expected), dtype=bool)
    spans = _month_bounds(start, end) if start < end else []
    whole = [_whole_month(lo, hi) for lo, hi in spans]
    months = [m for m in whole if m is not None]
    version = calendar_version(calendar)
    states = (
        month_states(conn, series, version, months[0], next_month(months[-1])) if months else {}
    )
    found: list[tuple[date, int, np.ndarray]] = []
    kept = empty = 0
    with conn.cursor() as cur:
        for (lo, hi), month in zip(spans, whole, strict=True):
            a, b = np.searchsorted(expected, [to_ns(lo), to_ns(hi)])
            state = states.get(month) if month is not None else None
            if month is not None and state is None:  # no bar in the month
                empty += 1
                continue
            if state is not None and state.missing is not None:
                present[a:b] = True
                present[a + np.searchsorted(expected[a:b], state.missing)] = False
                kept += 1
                continue
            present[a:b] = present_mask(expected[a:b], _read_range(cur, series, lo, hi))
            if state is not None:
                found.append((month, state.changed, expected[a:b][~present[a:b]]))
    keep_months(conn, series, version, found)
    return Presence(present, len(spans) - kept - empty, kept, empty)


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
    read: int = 0  # months whose bars were read (the others: kept or without bars)


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
    found = presence(conn, series, calendar, start, end, expected)
    present = found.present
    gaps = _long_runs(series, *runs_of(expected[~present]), min_gap_minutes)
    months = completeness(expected, present, gaps)
    return Scan(series, gaps, months, round(time.monotonic() - started, 3), found.read)


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
