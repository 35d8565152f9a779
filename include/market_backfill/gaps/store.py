"""The ``ohlcv_gaps`` table: record detected gaps, list open ones, record repairs.

Each function runs in the caller's transaction (``run_transaction``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from market_backfill.db.connection import Connection
from market_backfill.gaps.detect import Gap
from market_backfill.timeutil import from_ns, to_ns


class GapRecordCounts(TypedDict):
    """What recording one scan's gaps did."""

    gaps: int  # gaps found by the scan
    new: int
    updated: int
    closed: int  # recorded open gaps no longer missing, marked filled


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
    conn: Connection, symbol: str, start: datetime, end: datetime, gaps: Sequence[Gap]
) -> GapRecordCounts:
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
    return GapRecordCounts(gaps=len(gaps), new=new, updated=updated, closed=closed)


_OPEN_GAPS = """
SELECT symbol, gap_start, gap_end, minutes FROM ohlcv_gaps
WHERE symbol = ANY(%s) AND status = 'open' AND gap_start < %s AND gap_end > %s
ORDER BY gap_start, symbol LIMIT %s
"""


def open_gaps(
    conn: Connection, symbols: Sequence[str], start: datetime, end: datetime, limit: int
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


def mark_gap(
    conn: Connection, symbol: str, gap_start: datetime, status: str, error: str | None
) -> int:
    """Record one repair attempt's outcome; return the gap's attempts so far."""
    with conn.cursor() as cur:
        cur.execute(_MARK, (status, error[:2000] if error else None, status, symbol, gap_start))
        row = cur.fetchone()
    return int(row[0]) if row else 0


_OPEN_BY_MONTH = """
SELECT to_char(date_trunc('month', gap_start AT TIME ZONE 'UTC'), 'YYYY-MM'), count(*)
FROM ohlcv_gaps WHERE symbol = %s AND status = 'open' AND gap_start >= %s AND gap_start < %s
GROUP BY 1
"""


def open_gaps_by_month(
    conn: Connection, symbol: str, start: datetime, end: datetime
) -> dict[str, int]:
    """Open gaps of ``symbol`` starting in ``[start, end)``, counted per month ``YYYY-MM``."""
    with conn.cursor() as cur:
        cur.execute(_OPEN_BY_MONTH, (symbol, start, end))
        return dict(cur.fetchall())
