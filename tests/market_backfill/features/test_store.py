"""The feature stage's reads against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.connection import run_transaction
from market_backfill.features.store import count_minutes
from market_backfill.symbols import settings_of
from market_backfill_devtools.sample import bar_frame
from tests.conftest import store_bars

T = datetime(2025, 1, 1, tzinfo=UTC)


def _at(month: int, day: int = 1, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


SPANS = [
    (None, _at(4)),  # from the first bar, whole months only
    (None, _at(3, 10, 5)),  # from the first bar to inside a month
    (_at(1, 15, 7), _at(3, 20)),  # partial months at both ends, one whole between
    (_at(2), _at(3)),  # exactly one whole month
    (_at(2, 3), _at(2, 20)),  # inside one month
    (_at(2, 28, 20), _at(3, 1, 2)),  # across a boundary, no whole month
    (_at(1, 20), _at(2)),  # up to a month start, no whole month
    (_at(3, 31, 23), _at(3, 31, 23)),  # empty
    # bars on both sides of a month start (2025-04-30 22:00 .. 05-01 01:59)
    (_at(4, 30, 23), _at(5, 1, 1)),  # across the boundary, no whole month
    (_at(4, 30, 22), _at(5)),  # up to the month start: its last minute counted
    (_at(5), _at(5, 1, 0, 1)),  # the bar at exactly 00:00 UTC
    (None, _at(5, 1, 0, 30)),  # whole months, then part of May
    (_at(4, 30, 23, 59), _at(6)),  # one minute of April, then the whole of May
]


@pytest.mark.parametrize(("lo", "hi"), SPANS)
def test_count_minutes_equals_a_count_of_the_stored_bars(market_db, quarter_bars, lo, hi):
    store_bars(quarter_bars)
    store_bars(bar_frame(240, start="2025-04-30T22:00Z"))
    connect = hook_connector()
    nq = settings_of(connect, "GLBX.MDP3:NQ")
    series = nq.series("v", 0)

    def counts(conn) -> tuple[int, int]:
        with conn.cursor() as cur:
            cur.execute(
                "DELETE FROM market_bars_ohlcv_1m_clean WHERE ts >= %s AND ts < %s",
                (_at(2, 10), _at(2, 11)),  # the counts follow deletes too
            )
            cur.execute(
                "SELECT count(*) FROM market_bars_ohlcv_1m_clean WHERE symbol = %s "
                "AND roll_rule = %s AND rank = %s AND ts >= %s AND ts < %s",
                (*series.key, lo or datetime(1, 1, 1, tzinfo=UTC), hi),
            )
            direct = cur.fetchone()[0]
        return count_minutes(conn, series, lo, hi), direct

    counted, direct = run_transaction(connect, counts)
    assert counted == direct
    if hi > (lo or T) and hi > T:
        assert counted > 0
