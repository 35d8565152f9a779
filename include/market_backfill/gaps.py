"""Gap detection and repair against the symbol's trading calendar.

Expected minutes come from the calendar's schedule, vectorised (every minute from each
session's open to its close, close excluded); stored minutes from one indexed range
query per symbol and month, read as binary COPY straight into numpy. A gap is a maximal
run of missing minutes, consecutive in time (so it never spans a close, a break, a
weekend or a holiday), at least ``min_gap_minutes`` long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from psycopg import sql

from market_backfill.db import Connector, run_transaction
from market_backfill.planning import (
    ParamError,
    date_range,
    floor_minute,
    month_starts,
    param_symbols,
    require_known,
)
from market_backfill.reingest import CLEAN_TABLE
from market_backfill.reingest import parse_params as parse_reingest_params
from market_backfill.symbols import Symbol
from market_backfill.timeutil import from_ns, to_ns
from market_backfill.trading_calendar import MINUTE_NS, trading_minutes

log = logging.getLogger(__name__)

GAPS_TABLE = "ohlcv_gaps"
DEFAULT_LOOKBACK = timedelta(days=30)
_COPY_ROW = np.dtype([("fields", ">i2"), ("size", ">i4"), ("value", ">i8")])
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds


@dataclass(frozen=True)
class GapParams:
    """Validated ``gap_detection`` params."""

    symbols: tuple[Symbol, ...]
    start: datetime
    end: datetime
    min_gap_minutes: int
    repair: bool
    max_repairs: int
    reingest: Mapping[str, Any]


def parse_params(params: Mapping[str, Any], *, now: datetime | None = None) -> GapParams:
    """Validate the params; empty dates mean the last 30 days up to now (never later)."""
    now = floor_minute(now or datetime.now(UTC))
    symbols = param_symbols(params)
    window = date_range(params.get("start"), params.get("end"))
    start, end = window if window else (now - DEFAULT_LOOKBACK, now)
    end = min(end, now)
    min_gap = params.get("min_gap_minutes", 5)
    if not isinstance(min_gap, int) or isinstance(min_gap, bool) or min_gap < 1:
        raise ParamError(f"param 'min_gap_minutes' must be an integer >= 1, got {min_gap!r}")
    max_repairs = params.get("max_repairs", 100)
    if not isinstance(max_repairs, int) or max_repairs < 0:
        raise ParamError(f"param 'max_repairs' must be an integer >= 0, got {max_repairs!r}")
    repair = bool(params.get("repair", True))
    reingest = {k: params[k] for k in ("source", "dbn_path", "roll_rule", "rank") if k in params}
    if repair:  # the repair's source params must be valid before anything runs
        parse_reingest_params({**reingest, "symbols": [s.key for s in symbols]})
    return GapParams(symbols, start, end, min_gap, repair, max_repairs, reingest)


# -- minutes ---------------------------------------------------------------------------------


def stored_minutes(conn: Any, symbol: str, start: datetime, end: datetime) -> np.ndarray:
    """Open times (int64 ns) of stored bars of ``symbol`` in ``[start, end)``: one binary
    COPY of an index range scan per month, decoded by numpy without a Python loop."""
    query = sql.SQL(
        "COPY (SELECT ts FROM {} WHERE symbol = {} AND ts >= {} AND ts < {} ORDER BY ts) "
        "TO STDOUT (FORMAT binary)"
    )
    parts = []
    bounds = [*month_starts(start, end), end]
    with conn.cursor() as cur:
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            stmt = query.format(
                sql.Identifier(CLEAN_TABLE), sql.Literal(symbol), sql.Literal(lo), sql.Literal(hi)
            )
            buf = bytearray()
            with cur.copy(stmt) as copy:
                for block in copy:
                    buf += block
            parts.append(_decode_timestamps(bytes(buf)))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _decode_timestamps(data: bytes) -> np.ndarray:
    """Binary COPY of one timestamptz column -> int64 ns since the Unix epoch."""
    header = 11 + 4 + 4  # signature, flags, extension length (no extension)
    body = data[header:-2]  # the trailer is int16 -1
    rows = np.frombuffer(body, dtype=_COPY_ROW)
    return (rows["value"].astype(np.int64) + _PG_EPOCH_US) * 1000


@dataclass(frozen=True)
class Gap:
    symbol: str
    start_ns: int
    end_ns: int  # exclusive: open time of the first minute after the gap

    @property
    def minutes(self) -> int:
        return (self.end_ns - self.start_ns) // MINUTE_NS

    def to_dict(self) -> dict[str, Any]:
        start = from_ns(self.start_ns)
        return {
            "symbol": self.symbol,
            "gap_start": start.isoformat(),
            "gap_end": from_ns(self.end_ns).isoformat(),
            "minutes": self.minutes,
            "label": f"{self.symbol.split(':')[1]} {start:%Y-%m-%d %H:%M} ({self.minutes}m)",
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
    missing = expected[~present_mask(expected, stored)]
    if len(missing) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(missing) != MINUTE_NS) + 1
    starts = np.concatenate([[0], breaks])
    counts = np.diff(np.concatenate([starts, [len(missing)]]))
    return missing[starts], counts


def find_gaps(
    symbol: str, expected: np.ndarray, stored: np.ndarray, min_gap_minutes: int
) -> list[Gap]:
    """Gaps of at least ``min_gap_minutes`` (runs are consecutive in time, so a run never
    spans a session boundary: the calendar has no minute there)."""
    first, counts = missing_runs(expected, stored)
    keep = counts >= min_gap_minutes
    return [
        Gap(symbol, int(f), int(f) + int(n) * MINUTE_NS)
        for f, n in zip(first[keep], counts[keep], strict=True)
    ]


@dataclass
class Scan:
    """One symbol's scan of a range: its gaps and per-month completeness."""

    symbol: str
    gaps: list[Gap]
    months: list[dict[str, Any]]
    seconds: float


def scan(
    conn: Any, symbol: str, calendar: str, start: datetime, end: datetime, min_gap_minutes: int
) -> Scan:
    """Compare stored bars with the calendar over ``[start, end)``."""
    started = time.monotonic()
    expected = trading_minutes(calendar, start, end)
    stored = stored_minutes(conn, symbol, start, end)
    gaps = find_gaps(symbol, expected, stored, min_gap_minutes)
    months = completeness(expected, stored, gaps)
    return Scan(symbol, gaps, months, round(time.monotonic() - started, 3))


def completeness(
    expected: np.ndarray, stored: np.ndarray, gaps: Sequence[Gap]
) -> list[dict[str, Any]]:
    """Per calendar month: expected trading minutes, stored bars on them, percent, gaps."""
    if len(expected) == 0:
        return []
    months = expected.astype("datetime64[ns]").astype("datetime64[M]")  # sorted: expected is
    change = np.empty(len(months), dtype=bool)
    change[0] = True
    change[1:] = months[1:] != months[:-1]
    labels = months[change]
    month_idx = np.cumsum(change) - 1
    exp = np.bincount(month_idx, minlength=len(labels))
    got = np.bincount(month_idx, weights=present_mask(expected, stored), minlength=len(labels))
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


# -- the gaps table --------------------------------------------------------------------------


_UPSERT_GAP = """
INSERT INTO ohlcv_gaps (symbol, gap_start, gap_end, minutes, status, detected_at)
VALUES (%s, %s, %s, %s, 'open', now())
ON CONFLICT (symbol, gap_start) DO UPDATE
SET gap_end = EXCLUDED.gap_end, minutes = EXCLUDED.minutes, detected_at = now(),
    status = 'open', filled_at = NULL
RETURNING (xmax = 0)
"""

_CLOSE_VANISHED = """
UPDATE ohlcv_gaps SET status = 'filled', filled_at = now()
WHERE symbol = %s AND status = 'open' AND gap_start >= %s AND gap_end <= %s
  AND NOT (gap_start = ANY(%s))
"""


def record_gaps(
    conn: Any, symbol: str, start: datetime, end: datetime, gaps: Sequence[Gap]
) -> dict[str, int]:
    """Upsert the detected gaps (re-detection updates, never duplicates) and mark open gaps
    inside the scanned range that are no longer missing as filled. One transaction."""
    new = updated = 0
    with conn.cursor() as cur:
        for gap in gaps:
            cur.execute(
                _UPSERT_GAP, (symbol, from_ns(gap.start_ns), from_ns(gap.end_ns), gap.minutes)
            )
            if cur.fetchone()[0]:
                new += 1
            else:
                updated += 1
        cur.execute(_CLOSE_VANISHED, (symbol, start, end, [from_ns(g.start_ns) for g in gaps]))
        closed = cur.rowcount
    return {"gaps": len(gaps), "new": new, "updated": updated, "closed": closed}


_OPEN_GAPS = """
SELECT symbol, gap_start, gap_end, minutes FROM ohlcv_gaps
WHERE symbol = ANY(%s) AND status = 'open' AND gap_start < %s AND gap_end > %s
ORDER BY gap_start, symbol LIMIT %s
"""


def open_gaps(
    conn: Any, symbols: Sequence[str], start: datetime, end: datetime, limit: int
) -> list[dict[str, Any]]:
    """Open gaps overlapping ``[start, end)``, oldest first, at most ``limit``."""
    with conn.cursor() as cur:
        cur.execute(_OPEN_GAPS, (list(symbols), end, start, limit))
        return [Gap(s, to_ns(a), to_ns(b)).to_dict() for s, a, b, _ in cur.fetchall()]


_MARK = """
UPDATE ohlcv_gaps SET attempts = attempts + 1, status = %s, last_error = %s,
    filled_at = CASE WHEN %s = 'filled' THEN now() ELSE NULL END
WHERE symbol = %s AND gap_start = %s
RETURNING attempts
"""


def mark_gap(conn: Any, symbol: str, gap_start: datetime, status: str, error: str | None) -> int:
    """Record one repair attempt's outcome; return the gap's attempts so far."""
    with conn.cursor() as cur:
        cur.execute(_MARK, (status, error[:2000] if error else None, status, symbol, gap_start))
        row = cur.fetchone()
    return int(row[0]) if row else 0


def check_symbols(connect: Connector, symbols: Sequence[Symbol]) -> dict[Symbol, Any]:
    """Registry rows of ``symbols``; unknown ones are a param error."""

    return run_transaction(connect, lambda conn: require_known(conn, symbols), what="symbols")
