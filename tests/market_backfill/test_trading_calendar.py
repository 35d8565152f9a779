from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from market_backfill.timeutil import from_ns, to_ns
from market_backfill.trading_calendar import minute_count, minute_counts, trading_minutes

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


# -- the dated session history of CME equity index futures (US Central times) ------------------


def periods(lo: str, hi: str) -> list[tuple[str, str]]:
    """The trading periods in ``[lo, hi)`` (Chicago times), as 'MM-DD HH:MM' pairs."""
    import pandas as pd

    from market_backfill.trading_calendar import sessions

    ct = "America/Chicago"
    bounds = [pd.Timestamp(t, tz=ct).tz_convert("UTC").to_pydatetime() for t in (lo, hi)]
    show = lambda ns: pd.Timestamp(int(ns), tz="UTC").tz_convert(ct).strftime("%m-%d %H:%M")  # noqa: E731
    return [(show(a), show(b)) for a, b in sessions(CAL, *bounds)]


def test_until_november_2012_the_trade_date_ended_15_15_and_began_15_30_the_day_before():
    # a normal day: the 15:30-16:30 hour already counts for the next trade date
    assert periods("2011-03-07 15:00", "2011-03-08 17:00") == [
        ("03-07 15:00", "03-07 15:15"),
        ("03-07 15:30", "03-07 16:30"),
        ("03-07 17:00", "03-08 15:15"),
        ("03-08 15:30", "03-08 16:30"),
    ]
    # Good Friday: Thursday ends 15:15 with no evening session; Sunday 17:00 opens Monday
    assert periods("2011-04-21 15:00", "2011-04-24 18:00") == [
        ("04-21 15:00", "04-21 15:15"),
        ("04-24 17:00", "04-24 18:00"),
    ]
    # Thanksgiving: the Wednesday evening sessions, then the holiday halt at 10:30
    assert periods("2011-11-23 15:00", "2011-11-24 17:30") == [
        ("11-23 15:00", "11-23 15:15"),
        ("11-23 15:30", "11-23 16:30"),
        ("11-23 17:00", "11-24 10:30"),
        ("11-24 17:00", "11-24 17:30"),
    ]


def test_from_november_2012_the_close_was_16_15_with_the_15_15_halt():
    assert periods("2012-11-16 15:00", "2012-11-19 17:00") == [
        ("11-16 15:00", "11-16 15:15"),  # the last Friday of the old hours
        ("11-18 17:00", "11-19 15:15"),
        ("11-19 15:30", "11-19 16:15"),
    ]
    assert periods("2014-04-17 16:30", "2014-04-20 18:00") == [("04-20 17:00", "04-20 18:00")]
    assert periods("2013-11-28 15:00", "2013-11-29 17:30") == [("11-28 17:00", "11-29 12:15")]


def test_from_september_2015_the_close_was_16_00_the_halt_still_in_place():
    assert periods("2015-09-18 15:00", "2015-09-21 17:00") == [
        ("09-18 15:00", "09-18 15:15"),
        ("09-18 15:30", "09-18 16:15"),  # the last day of the 16:15 close
        ("09-20 17:00", "09-21 15:15"),
        ("09-21 15:30", "09-21 16:00"),
    ]
    # Christmas: Friday's full day, Monday closed, Tuesday's trade date opens Monday 17:00
    assert periods("2017-12-22 15:00", "2017-12-26 18:00") == [
        ("12-22 15:00", "12-22 15:15"),
        ("12-22 15:30", "12-22 16:00"),
        ("12-25 17:00", "12-26 15:15"),
        ("12-26 15:30", "12-26 16:00"),
        ("12-26 17:00", "12-26 18:00"),
    ]
    assert periods("2017-11-22 15:00", "2017-11-24 17:30") == [
        ("11-22 15:00", "11-22 15:15"),
        ("11-22 15:30", "11-22 16:00"),
        ("11-22 17:00", "11-23 12:00"),
        ("11-23 17:00", "11-24 12:15"),
    ]


def test_from_june_28_2021_trading_is_continuous_from_17_00_to_16_00():
    assert periods("2021-06-25 15:00", "2021-06-28 17:00") == [
        ("06-25 15:00", "06-25 15:15"),  # the last day with the halt
        ("06-25 15:30", "06-25 16:00"),
        ("06-27 17:00", "06-28 16:00"),
    ]
    assert periods("2023-12-22 15:00", "2023-12-26 18:00") == [
        ("12-22 15:00", "12-22 16:00"),
        ("12-25 17:00", "12-26 16:00"),
        ("12-26 17:00", "12-26 18:00"),
    ]
    assert periods("2023-07-03 11:00", "2023-07-04 17:30") == [
        ("07-03 11:00", "07-03 12:15"),
        ("07-03 17:00", "07-04 12:00"),
        ("07-04 17:00", "07-04 17:30"),
    ]


def test_a_2014_week_stored_as_it_traded_has_no_gap():
    """Bars on the hours CME published for 2014 (built here from the hours, not from the
    calendar): no false 15-minute gap at the halt, no missing 16:00-16:15."""
    import pandas as pd

    from market_backfill.gaps.detect import find_gaps

    ct = "America/Chicago"
    days = pd.date_range("2014-03-10", "2014-03-14", freq="D")
    stamps = []
    for day in days:
        for lo, hi in (
            (day - pd.Timedelta(hours=7), day + pd.Timedelta(hours=15, minutes=15)),
            (day + pd.Timedelta(hours=15, minutes=30), day + pd.Timedelta(hours=16, minutes=15)),
        ):
            stamps.append(pd.date_range(lo, hi, freq="min", inclusive="left"))
    traded = pd.DatetimeIndex(np.concatenate(stamps)).tz_localize(ct).tz_convert("UTC")
    stored = traded.as_unit("ns").asi8
    lo = datetime(2014, 3, 9, 22, tzinfo=UTC)  # Sunday 17:00 CDT
    hi = datetime(2014, 3, 14, 21, 15, tzinfo=UTC)  # Friday 16:15 CDT
    expected = trading_minutes(CAL, lo, hi)
    assert len(expected) == 5 * (22 * 60 + 15 + 45) == len(stored)
    assert find_gaps("GLBX.MDP3:NQ", expected, stored, 1) == []
    assert np.array_equal(expected, np.sort(stored))


@pytest.mark.parametrize("calendar", [CAL, "CME_Agriculture", "CMEGlobex_Crude"])
def test_minute_counts_match_the_listed_minutes_between_any_bounds(calendar):
    start, end = datetime(2011, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    listed = trading_minutes(calendar, start, end)
    rng = np.random.default_rng(7)
    # month starts, odd seconds inside sessions and breaks, and bounds outside any session
    bounds = np.unique(
        np.concatenate(
            [
                pd.date_range(start, end, freq="MS").as_unit("ns").asi8,
                rng.integers(to_ns(start), to_ns(end), 400),
                listed[rng.integers(0, len(listed), 100)] + 30_000_000_000,
            ]
        )
    )
    expected = np.diff(np.searchsorted(listed, bounds, side="left"))
    assert np.array_equal(minute_counts(calendar, bounds), expected)
    assert minute_counts(calendar, bounds[:1]).size == 0
    weekend = np.array(
        [to_ns(datetime(2025, 12, 6, tzinfo=UTC)), to_ns(datetime(2025, 12, 7, tzinfo=UTC))]
    )
    assert minute_counts(calendar, weekend).tolist() == [0]
    for lo, hi in zip(bounds[:-40:37], bounds[40::37], strict=False):  # minute_count: one span
        assert minute_count(calendar, int(lo), int(hi)) == len(
            trading_minutes(calendar, from_ns(int(lo)), from_ns(int(hi)))
        )
        assert minute_count(calendar, int(hi), int(lo)) == 0
