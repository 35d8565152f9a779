"""Gap detection against the symbol's trading calendar, vectorised.

Expected minutes come from the calendar's schedule (every minute from each session's
open to its close, close excluded); stored minutes from indexed range queries per
symbol, each read as one binary value straight into numpy, for the months whose bars
changed since an earlier scan kept them (:mod:`market_backfill.gaps.scanned_months`;
a month without bars is not read at all; consecutive months to read go by one range scan,
up to :data:`MONTHS_PER_READ`; a detect task reads two ranges at once over two
connections while it compares the ones read with the calendar). A gap is a maximal run of
missing minutes, consecutive in time (so it never spans a close, a break, a weekend or
a holiday), at least ``min_gap_minutes`` long.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

import numpy as np
from psycopg import sql

from market_backfill.db.connection import Connection, Connector, close_quietly, release
from market_backfill.db.copy_binary import read_timestamps
from market_backfill.db.split_read import helper_read
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill.gaps.scanned_months import keep_months, month_states
from market_backfill.minute_runs import runs_of
from market_backfill.names import MINUTE_NS
from market_backfill.planning import month_floor, month_starts, next_month
from market_backfill.symbols import Series
from market_backfill.timeutil import from_ns, to_ns
from market_backfill.trading_calendar import (
    calendar_version,
    cut_periods,
    period_counts,
    period_minutes,
    sessions,
)

log = logging.getLogger(__name__)

_RANGE_READ = sql.SQL(
    "SELECT ts FROM {} WHERE symbol = {} AND roll_rule = {} AND rank = {} "
    "AND ts >= {} AND ts < {} ORDER BY ts"
)


MONTHS_PER_READ = 12
"""Consecutive months a scan reads by one range query: a first scan of 15 years sends 15
queries, not 180 (each query costs the server its start and the client a round trip); a
year of 1-minute bars is about 3 MB sent."""


def _read_range(cur: Any, series: Series, lo: datetime, hi: datetime) -> np.ndarray:
    key = [sql.Literal(v) for v in series.key]
    stmt = _RANGE_READ.format(sql.Identifier(CLEAN_TABLE), *key, sql.Literal(lo), sql.Literal(hi))
    return read_timestamps(cur, stmt)


READ_AHEAD = 3
"""Ranges a two-reader scan holds at most: two being read, one the caller works on (a year
of one series is about 3 MB)."""


def read_ranges(
    conn: Connection,
    series: Series,
    ranges: Sequence[tuple[datetime, datetime]],
    connect: Connector | None = None,
) -> Iterator[np.ndarray]:
    """The stored open times (int64 ns, sorted) of ``series`` in each of ``ranges``, in
    order, one range scan each. With ``connect`` and more than one range, two threads
    read them, one on ``conn`` and one on a connection from ``connect`` (given back
    after), up to :data:`READ_AHEAD` ranges ahead of the caller: the server scans two
    ranges at once while the caller compares the ones read with the calendar. The caller
    must not use ``conn`` until the iteration ends (it waits for the readers then, also
    when abandoned early). Reads on ``conn`` are in the caller's transaction; each read
    sees the bars committed before it began, as on ``conn`` alone (read committed). A
    read on the helper waits at most :data:`~market_backfill.db.split_read.HELPER_LOCK_TIMEOUT`
    for a lock: then the readers stop and the ranges from that one on are read on
    ``conn`` (no deadlock with a lock request queued behind the caller's transaction)."""
    if connect is None or len(ranges) < 2:
        yield from _read_in_order(conn, series, ranges)
        return
    helper = connect()
    free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
    free.put(conn)
    free.put(helper)

    def read_on(reader: Connection, lo: datetime, hi: datetime) -> np.ndarray:
        with reader.cursor() as cur:
            return _read_range(cur, series, lo, hi)

    def read(span: tuple[datetime, datetime]) -> np.ndarray | None:
        reader = free.get()
        try:
            if reader is helper:  # None: it met a lock
                return helper_read(helper, read_on, *span)
            return read_on(reader, *span)
        finally:
            free.put(reader)

    done = False
    blocked = len(ranges)  # the first range the helper could not read
    pending: deque[Future[np.ndarray | None]] = deque()
    with ThreadPoolExecutor(2, thread_name_prefix="gap scan reader") as pool:
        try:
            todo = iter(ranges)
            for span in islice(todo, READ_AHEAD):
                pending.append(pool.submit(read, span))
            for index in range(len(ranges)):
                stored = pending.popleft().result()
                if stored is None:
                    blocked = index
                    break
                for span in islice(todo, 1):
                    pending.append(pool.submit(read, span))
                yield stored
            done = True
        finally:
            for future in pending:
                future.cancel()
    if done:
        release(connect, helper)
    else:  # a read failed or the caller stopped: the helper's state is not known
        close_quietly(helper)
    if blocked < len(ranges):  # the readers have ended: the rest on ``conn`` alone
        log.info("gap scan: a lock held the second reader; reading on one connection")
        yield from _read_in_order(conn, series, ranges[blocked:])


def _read_in_order(
    conn: Connection, series: Series, ranges: Sequence[tuple[datetime, datetime]]
) -> Iterator[np.ndarray]:
    with conn.cursor() as cur:
        for lo, hi in ranges:
            yield _read_range(cur, series, lo, hi)


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


def consecutive_groups(indexes: Sequence[int], limit: int) -> list[list[int]]:
    """``indexes`` (ascending) cut into runs of consecutive values, each at most ``limit``
    long."""
    groups: list[list[int]] = []
    for i in indexes:
        if groups and groups[-1][-1] == i - 1 and len(groups[-1]) < limit:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _whole_month(lo: datetime, hi: datetime) -> date | None:
    """``lo``'s month when the span ``[lo, hi)`` (of :func:`_month_bounds`: never across
    a month start) is all of it, else None."""
    whole = lo == month_floor(lo) and hi == month_floor(hi)
    return lo.astimezone(UTC).date() if whole else None


def missing_minutes(
    conn: Connection,
    series: Series,
    calendar: str,
    spans: Sequence[tuple[datetime, datetime]],
    periods: np.ndarray,
    connect: Connector | None = None,
) -> tuple[list[np.ndarray], int]:
    """The trading minutes of each span (months, or parts of the range's first and last)
    without a stored bar (sorted int64 ns), and how many spans were read; ``periods``:
    the calendar's sessions over the spans. Whole UTC
    months come from :mod:`~market_backfill.gaps.scanned_months` while their bars are
    unchanged, and are not read when they hold none; the others are read (consecutive ones
    by one range scan, up to :data:`MONTHS_PER_READ`) and whole ones kept for the next
    scan. Runs in the caller's transaction (its commit keeps the months read); with
    ``connect`` two connections read at once (:func:`read_ranges`)."""
    if not spans:
        return [], 0
    whole = [_whole_month(lo, hi) for lo, hi in spans]
    months = [m for m in whole if m is not None]
    version = calendar_version(calendar)
    states = (
        month_states(conn, series, version, months[0], next_month(months[-1])) if months else {}
    )
    missing = [np.empty(0, dtype=np.int64)] * len(spans)  # the spans read: filled below
    to_read: list[int] = []
    for i, ((lo, hi), month) in enumerate(zip(spans, whole, strict=True)):
        state = states.get(month) if month is not None else None
        if state is not None and state.missing is not None:  # unchanged since kept
            missing[i] = state.missing
        elif month is not None and state is None:  # no bar in the month
            missing[i] = period_minutes(cut_periods(periods, to_ns(lo), to_ns(hi)))
        else:
            to_read.append(i)
    found: list[tuple[date, int, np.ndarray]] = []
    groups = consecutive_groups(to_read, MONTHS_PER_READ)
    ranges = [(spans[g[0]][0], spans[g[-1]][1]) for g in groups]
    with contextlib.closing(read_ranges(conn, series, ranges, connect)) as reads:
        for group, stored in zip(groups, reads, strict=True):  # the readers end with the loop
            cuts = np.searchsorted(stored, [to_ns(spans[i][1]) for i in group[:-1]])
            for i, bars in zip(group, np.split(stored, cuts), strict=True):
                span_lo, span_hi = (to_ns(t) for t in spans[i])
                expected = period_minutes(cut_periods(periods, span_lo, span_hi))
                missing[i] = gone = expected[~present_mask(expected, bars)]
                state = states.get(whole[i]) if whole[i] is not None else None
                if state is not None:
                    found.append((whole[i], state.changed, gone))
    keep_months(conn, series, version, found)
    return missing, len(to_read)


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
    read: int  # months whose bars were read (the others: kept, or without bars)


def scan(
    conn: Connection,
    series: Series,
    calendar: str,
    start: datetime,
    end: datetime,
    min_gap_minutes: int,
    connect: Connector | None = None,
) -> Scan:
    """Compare stored bars with the calendar over ``[start, end)``, month by month
    (:func:`missing_minutes`: in the caller's transaction; with ``connect``, a second
    connection from it reads beside ``conn``)."""
    started = time.monotonic()
    spans = _month_bounds(start, end) if start < end else []
    bounds = np.array([to_ns(lo) for lo, _ in spans] + [to_ns(end)], dtype=np.int64)
    periods = sessions(calendar, start, end)  # empty when start >= end
    expected = period_counts(periods, bounds) if spans else np.zeros(0, dtype=np.int64)
    missing, read = missing_minutes(conn, series, calendar, spans, periods, connect)
    gone = np.concatenate(missing) if missing else np.empty(0, dtype=np.int64)
    gaps = _long_runs(series, *runs_of(gone), min_gap_minutes)
    absent = np.array([len(m) for m in missing], dtype=np.int64)
    months = completeness(bounds, expected, expected - absent, gaps)
    return Scan(series, gaps, months, round(time.monotonic() - started, 3), read)


def completeness(
    bounds: np.ndarray, expected: np.ndarray, stored: np.ndarray, gaps: Sequence[Gap]
) -> list[dict[str, Any]]:
    """Per calendar month of the spans ``[bounds[i], bounds[i+1])`` (one per month, int64
    ns) holding trading minutes: their ``expected`` count, the ``stored`` bars on them,
    percent, and the gaps starting there."""
    at = np.searchsorted(bounds, np.array([g.start_ns for g in gaps], dtype=np.int64), "right")
    n_gaps = np.bincount(at - 1, minlength=len(expected))
    held = np.flatnonzero(expected)
    labels = bounds[held].astype("datetime64[ns]").astype("datetime64[M]")
    exp, got = expected[held], stored[held]
    return [
        {
            "month": str(m),
            "expected": int(e),
            "stored": int(g),
            "percent": round(100.0 * g / e, 2) if e else 100.0,
            "gaps": int(n),
        }
        for m, e, g, n in zip(labels, exp, got, n_gaps[held], strict=True)
    ]
