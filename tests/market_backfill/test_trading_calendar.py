from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from market_backfill.timeutil import from_ns, to_ns
from market_backfill.trading_calendar import trading_minutes

CAL = "CME Globex Equity"


def test_a_regular_day_has_23_hours_and_no_break():
    mins = trading_minutes(
        CAL, datetime(2025, 12, 1, 23, tzinfo=UTC), datetime(2025, 12, 2, 23, tzinfo=UTC)
    )
    assert len(mins) == 23 * 60
    assert from_ns(mins[0]) == datetime(2025, 12, 1, 23, tzinfo=UTC)
    assert from_ns(mins[-1]) == datetime(2025, 12, 2, 21, 59, tzinfo=UTC)
    assert np.all(np.diff(mins) == 60_000_000_000)


def test_weekend_is_empty_and_sunday_opens_at_18_et():
    sat = trading_minutes(
        CAL, datetime(2025, 12, 6, tzinfo=UTC), datetime(2025, 12, 7, 22, tzinfo=UTC)
    )
    assert len(sat) == 0
    sun = trading_minutes(CAL, datetime(2025, 12, 7, tzinfo=UTC), datetime(2025, 12, 8, tzinfo=UTC))
    assert from_ns(sun[0]) == datetime(2025, 12, 7, 23, tzinfo=UTC)  # 18:00 EST


def test_dst_moves_the_open_to_22_utc():
    mins = trading_minutes(CAL, datetime(2025, 3, 9, tzinfo=UTC), datetime(2025, 3, 10, tzinfo=UTC))
    assert from_ns(mins[0]) == datetime(2025, 3, 9, 22, tzinfo=UTC)  # 18:00 EDT


def test_early_close_on_christmas_eve():
    mins = trading_minutes(
        CAL, datetime(2025, 12, 24, tzinfo=UTC), datetime(2025, 12, 25, tzinfo=UTC)
    )
    assert from_ns(mins[-1]) == datetime(2025, 12, 24, 18, 14, tzinfo=UTC)  # 12:15 CT close


def test_range_bounds_are_respected():
    start, end = (
        datetime(2025, 12, 2, 10, 30, tzinfo=UTC),
        datetime(2025, 12, 2, 10, 45, tzinfo=UTC),
    )
    mins = trading_minutes(CAL, start, end)
    assert (mins[0], len(mins)) == (to_ns(start), 15)
