"""The ``ohlcv_gaps`` table: record detected gaps, list open ones, record repairs.

Each function runs in the caller's transaction (``run_transaction``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from market_backfill.db.connection import Connection, first_value
from market_backfill.gaps.detect import Gap
from market_backfill.symbols import Series, parse_symbol
from market_backfill.timeutil import from_ns, to_ns


class GapRecordCounts(TypedDict):
    """What recording one scan's gaps did."""

    gaps: int  # gaps found by the scan
    new: int
    updated: int
    closed: int  # recorded open gaps no longer missing, marked filled


# An unfillable gap detected again with the same extent stays unfillable; one whose
# extent changed is a new question: open again, its attempts counted from zero.
_UPSERT_GAP = """
INSERT INTO ohlcv_gaps AS g
    (symbol, roll_rule, rank, gap_start, gap_end, minutes, status, detected_at)
VALUES (%s, %s, %s, %s, %s, %s, 'open', now())
ON CONFLICT (symbol, roll_rule, rank, gap_start) DO UPDATE
SET gap_end = EXCLUDED.gap_end, minutes = EXCLUDED.minutes, detected_at = now(),
    status = CASE WHEN g.status = 'unfillable' AND g.gap_end = EXCLUDED.gap_end
                  THEN 'unfillable' ELSE 'open' END,
    attempts = CASE WHEN g.gap_end = EXCLUDED.gap_end THEN g.attempts ELSE 0 END,
    filled_at = NULL
RETURNING (xmax = 0)
"""

_CLOSE_VANISHED = """
UPDATE ohlcv_gaps SET status = 'filled', filled_at = now()
WHERE symbol = %s AND roll_rule = %s AND rank = %s AND status IN ('open', 'unfillable')
  AND gap_start >= %s AND gap_end <= %s AND NOT (gap_start = ANY(%s))
"""


def record_gaps(
    conn: Connection, series: Series, start: datetime, end: datetime, gaps: Sequence[Gap]
) -> GapRecordCounts:
    """Upsert the detected gaps (re-detection updates, never duplicates) and mark recorded
    gaps inside the scanned range that are no longer missing as filled. One transaction."""
    new = updated = 0
    with conn.cursor() as cur:
        for gap in gaps:
            bounds = (from_ns(gap.start_ns), from_ns(gap.end_ns), gap.minutes)
            cur.execute(_UPSERT_GAP, (*series.key, *bounds))
            if cur.fetchone()[0]:
                new += 1
            else:
                updated += 1
        starts = [from_ns(g.start_ns) for g in gaps]
        cur.execute(_CLOSE_VANISHED, (*series.key, start, end, starts))
        closed = cur.rowcount
    return GapRecordCounts(gaps=len(gaps), new=new, updated=updated, closed=closed)


_OPEN_GAPS = """
SELECT symbol, roll_rule, rank, gap_start, gap_end FROM ohlcv_gaps
WHERE (symbol, roll_rule, rank) IN (
        SELECT * FROM unnest(%s::text[], %s::text[], %s::smallint[]))
  AND status = ANY(%s) AND gap_start < %s AND gap_end > %s
ORDER BY gap_start, symbol LIMIT %s
"""


def open_gaps(
    conn: Connection,
    series: Sequence[Series],
    start: datetime,
    end: datetime,
    limit: int,
    *,
    retry_unfillable: bool = False,
) -> list[dict[str, Any]]:
    """Gaps to repair overlapping ``[start, end)``, oldest first, at most ``limit``: the
    open ones, and with ``retry_unfillable`` the unfillable ones too."""
    statuses = ["open", "unfillable"] if retry_unfillable else ["open"]
    keys = list(zip(*(one.key for one in series), strict=True)) or [(), (), ()]
    with conn.cursor() as cur:
        cur.execute(_OPEN_GAPS, (*(list(k) for k in keys), statuses, end, start, limit))
        return [
            Gap(Series(parse_symbol(s), roll, rank), to_ns(a), to_ns(b)).to_dict()
            for s, roll, rank, a, b in cur.fetchall()
        ]


_MARK = """
UPDATE ohlcv_gaps SET attempts = attempts + 1,
    status = CASE WHEN %(status)s = 'filled' THEN 'filled'
                  WHEN attempts + 1 >= %(max_attempts)s THEN 'unfillable' ELSE 'open' END,
    last_error = %(error)s,
    filled_at = CASE WHEN %(status)s = 'filled' THEN now() ELSE NULL END
WHERE symbol = %(symbol)s AND roll_rule = %(roll_rule)s AND rank = %(rank)s
  AND gap_start = %(gap_start)s
RETURNING attempts, status
"""

_NOTE_ERROR = """
UPDATE ohlcv_gaps SET last_error = %s
WHERE symbol = %s AND roll_rule = %s AND rank = %s AND gap_start = %s
"""


def mark_gap(
    conn: Connection,
    series: Series,
    gap_start: datetime,
    filled: bool,
    error: str | None,
    max_attempts: int,
) -> tuple[int, str]:
    """Record one repair attempt: ``filled``, or still missing (``error`` says why), which
    makes the gap ``unfillable`` at its ``max_attempts``-th attempt. Returns the gap's
    attempts so far and its status."""
    params = {
        "status": "filled" if filled else "open",
        "max_attempts": max_attempts,
        "error": error[:2000] if error else None,
        "symbol": series.symbol.key,
        "roll_rule": series.roll_rule,
        "rank": series.rank,
        "gap_start": gap_start,
    }
    with conn.cursor() as cur:
        cur.execute(_MARK, params)
        row = cur.fetchone()
    return (int(row[0]), str(row[1])) if row else (0, "open")


def note_error(conn: Connection, series: Series, gap_start: datetime, error: str) -> None:
    """Keep why a repair could not even ask the source (a refused key): not an attempt."""
    with conn.cursor() as cur:
        cur.execute(_NOTE_ERROR, (error[:2000], *series.key, gap_start))


_BY_MONTH = """
SELECT to_char(date_trunc('month', gap_start AT TIME ZONE 'UTC'), 'YYYY-MM'), status, count(*)
FROM ohlcv_gaps WHERE symbol = %s AND roll_rule = %s AND rank = %s AND status <> 'filled'
  AND gap_start >= %s AND gap_start < %s
GROUP BY 1, 2
"""


def missing_gaps_by_month(
    conn: Connection, series: Series, start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    """Gaps of ``series`` starting in ``[start, end)`` that are still missing, counted per
    month ``YYYY-MM`` and status (``open``, ``unfillable``)."""
    out: dict[str, dict[str, int]] = {}
    with conn.cursor() as cur:
        cur.execute(_BY_MONTH, (*series.key, start, end))
        for month, status, n in cur.fetchall():
            out.setdefault(month, {})[status] = int(n)
    return out


_MISSING_GAPS = """
SELECT gap_start, gap_end, minutes, status FROM ohlcv_gaps
WHERE symbol = %s AND roll_rule = %s AND rank = %s AND status <> 'filled'
  AND gap_start < %s AND gap_end > %s
ORDER BY gap_start
"""


def missing_gaps(
    conn: Connection, series: Series, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, int, str]]:
    """(start, end, minutes, status) of the gaps of ``series`` still missing (open or
    unfillable) that overlap ``[start, end)``, in order."""
    with conn.cursor() as cur:
        cur.execute(_MISSING_GAPS, (*series.key, end, start))
        return cur.fetchall()


_NEWEST_BAR = """
SELECT ts FROM market_bars_ohlcv_1m_clean
WHERE symbol = %s AND roll_rule = %s AND rank = %s AND ts < %s
ORDER BY ts DESC LIMIT 1
"""


def newest_bar(conn: Connection, series: Series, before: datetime) -> datetime | None:
    """The open time of the newest stored bar of ``series`` before ``before``, or None."""
    with conn.cursor() as cur:
        cur.execute(_NEWEST_BAR, (*series.key, before))
        return first_value(cur.fetchone())
