from __future__ import annotations

import numpy as np
import pandas as pd

from market_backfill.gaps.detect import find_gaps, scan, stored_minutes
from market_backfill.gaps.params import parse_params
from market_backfill.timeutil import from_ns, to_ns
from market_backfill.trading_calendar import trading_minutes
from tests.conftest import store_bars
from tests.market_backfill.gaps.holes import (
    CAL,
    END,
    HOLES,
    NQ,
    NQ_V0,
    START,
    bars_with_holes,
    cut_holes,
    utc,
)


def test_holes_of_known_lengths_are_found_and_nothing_else():
    expected = trading_minutes(CAL, START, END)
    stored = cut_holes(expected, HOLES)
    gaps = find_gaps(NQ_V0, expected, stored, 5)
    assert [(from_ns(g.start_ns).isoformat()[:16], g.minutes) for g in gaps] == [
        ("2025-11-23T23:00", 12),
        ("2025-11-24T14:30", 30),
        ("2025-11-24T16:00", 5),
        ("2025-11-25T21:50", 10),
        ("2025-11-28T18:05", 10),
    ]
    assert gaps[3].end_ns == to_ns("2025-11-25T22:00")  # never spans the break
    assert gaps[-1].end_ns == to_ns("2025-11-28T18:15")  # nor the early close
    assert [g.to_dict()["label"] for g in gaps[:2]] == [  # the repair tasks' UI labels
        "NQ 2025-11-23 23:00 (12m)",
        "NQ 2025-11-24 14:30 (30m)",
    ]


def test_weekend_holiday_break_and_the_future_are_never_gaps():
    expected = trading_minutes(CAL, utc("2025-11-26T00:00"), utc("2025-12-01T12:00"))
    ts = pd.to_datetime(expected, unit="ns", utc=True)
    assert not ((ts >= "2025-11-29") & (ts < "2025-11-30T23:00")).any()  # weekend
    assert not ((ts >= "2025-11-26T22:00") & (ts < "2025-11-26T23:00")).any()  # break
    assert not ((ts >= "2025-11-27T18:00") & (ts < "2025-11-27T23:00")).any()  # holiday close
    assert find_gaps(NQ_V0, expected, expected, 1) == []
    gp = parse_params(
        {"symbols": [NQ], "start": "2025-11-01", "end": "2030-01-01", "repair": False},
        now=utc("2025-11-20T10:03:30"),
    )
    assert gp.end == utc("2025-11-20T10:03")


def test_dst_week_hole_at_the_new_open():
    start, end = utc("2025-03-09T00:00"), utc("2025-03-10T00:00")
    expected = trading_minutes(CAL, start, end)
    assert from_ns(expected[0]) == utc("2025-03-09T22:00")  # 18:00 EDT
    gaps = find_gaps(NQ_V0, expected, cut_holes(expected, [("2025-03-09T22:00", 20)]), 5)
    assert [(g.start_ns, g.minutes) for g in gaps] == [(to_ns("2025-03-09T22:00"), 20)]


def test_a_symbol_without_bars_has_one_gap_per_session():
    expected = trading_minutes(CAL, START, END)
    gaps = find_gaps(NQ_V0, expected, np.empty(0, dtype=np.int64), 5)
    assert len(gaps) == 5  # Sun-Mon, Mon-Tue, Tue-Wed, Wed (holiday short), Thu-Fri (early)
    assert sum(g.minutes for g in gaps) == len(expected)


def test_stored_minutes_and_scan_against_the_database(market_db):
    full, partial = bars_with_holes(HOLES)
    store_bars(partial)
    with market_db.connect() as conn:
        got = stored_minutes(conn, NQ_V0, START, END)
        assert got.tolist() == partial.ts.tolist()
        result = scan(conn, NQ_V0, CAL, START, END, 5)
    assert [g.minutes for g in result.gaps] == [12, 30, 5, 10, 10]
    assert [m["month"] for m in result.months] == ["2025-11"]
    assert result.months[0]["expected"] == len(full)
    assert result.months[0]["stored"] == len(partial)


def test_a_grains_root_is_checked_on_its_own_calendar(market_db):
    """ZC (CMEGlobex_Grains, from the registry): the 07:45-08:30 CT pause and the
    13:20-19:00 CT close are no gaps; a hole in its trading hours is."""
    from market_backfill.db.connection import run_transaction
    from market_backfill.symbols import Series, load_settings, parse_symbol
    from market_backfill_devtools.sample import synthetic_bars

    zc = parse_symbol("GLBX.MDP3:ZC")
    start, end = utc("2025-03-10T00:00"), utc("2025-03-13T00:00")
    with market_db.connect() as conn:
        calendar = load_settings(conn, [zc])[zc].calendar
    assert calendar == "CMEGlobex_Grains"
    bars = synthetic_bars("ZC.v.0", start, end, seed=3, quiet_fraction=0, calendar=calendar)
    ts = bars.ts.to_numpy()
    hole = (ts >= to_ns("2025-03-11T15:00")) & (ts < to_ns("2025-03-11T15:20"))  # 10:00 CT
    store_bars(bars[~hole], symbol=zc.key)
    series = Series(zc, "v", 0)
    found = run_transaction(
        lambda: market_db.connect(), lambda c: scan(c, series, calendar, start, end, 5)
    )
    assert [(from_ns(g.start_ns).isoformat()[:16], g.minutes) for g in found.gaps] == [
        ("2025-03-11T15:00", 20)
    ]
    per_day = len(trading_minutes(calendar, utc("2025-03-11T00:00"), utc("2025-03-12T00:00")))
    assert per_day == 765 + 290  # 19:00-07:45 and 08:30-13:20 CT
