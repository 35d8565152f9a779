from __future__ import annotations

from market_backfill.gaps.detect import Gap
from market_backfill.gaps.store import record_gaps
from market_backfill.timeutil import to_ns
from tests.market_backfill.gaps.holes import END, NQ, START


def test_redetection_updates_never_duplicates_and_closes_vanished_gaps(market_db):
    gaps = [
        Gap(NQ, to_ns("2025-11-24T14:30"), to_ns("2025-11-24T15:00")),
        Gap(NQ, to_ns("2025-11-25T10:00"), to_ns("2025-11-25T10:20")),
    ]
    with market_db.connect() as conn:
        assert record_gaps(conn, NQ, START, END, gaps) == {
            "gaps": 2,
            "new": 2,
            "updated": 0,
            "closed": 0,
        }
        longer = [Gap(NQ, gaps[0].start_ns, to_ns("2025-11-24T15:10"))]
        assert record_gaps(conn, NQ, START, END, longer) == {
            "gaps": 1,
            "new": 0,
            "updated": 1,
            "closed": 1,
        }
        rows = conn.execute(
            "SELECT gap_start, minutes, status FROM ohlcv_gaps ORDER BY gap_start"
        ).fetchall()
    assert [(r[1], r[2]) for r in rows] == [(40, "open"), (20, "filled")]
