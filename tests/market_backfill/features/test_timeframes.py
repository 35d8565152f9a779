"""Buckets and sessions of features.md section 1, case by case."""

from __future__ import annotations

import numpy as np
import pytest

from market_backfill.features.timeframes import bucket_ends, bucket_starts, trade_days
from market_backfill.timeutil import from_ns, to_ns


def starts(stamps: list[str], tf: str) -> list[str]:
    ts = np.array([to_ns(s) for s in stamps], dtype=np.int64)
    return [from_ns(int(v)).strftime("%Y-%m-%dT%H:%M") for v in bucket_starts(ts, tf)]


def test_clock_buckets_floor_in_utc():
    assert starts(["2025-03-10T14:07", "2025-03-10T14:59"], "5m") == [
        "2025-03-10T14:05",
        "2025-03-10T14:55",
    ]
    assert starts(["2025-03-10T14:59"], "15m") == ["2025-03-10T14:45"]
    assert starts(["2025-03-10T14:59"], "1h") == ["2025-03-10T14:00"]


@pytest.mark.parametrize(
    ("minute", "bucket"),
    [
        # winter: the session opens 18:00 EST = 23:00 UTC
        ("2025-01-14T23:00", "2025-01-14T23:00"),
        ("2025-01-15T02:59", "2025-01-14T23:00"),
        ("2025-01-15T03:00", "2025-01-15T03:00"),  # 22:00 New York
        ("2025-01-15T07:30", "2025-01-15T07:00"),  # 02:00 New York
        ("2025-01-15T21:59", "2025-01-15T19:00"),  # 14:00 New York, the session's last
        # summer: 18:00 EDT = 22:00 UTC
        ("2025-07-15T22:00", "2025-07-15T22:00"),
        ("2025-07-16T13:59", "2025-07-16T10:00"),  # 06:00 New York
        ("2025-07-16T14:00", "2025-07-16T14:00"),  # 10:00 New York
    ],
)
def test_four_hour_buckets_count_from_the_18h_new_york_open(minute, bucket):
    assert starts([minute], "4h") == [bucket]


def test_a_day_is_a_session_opening_18h_new_york_the_evening_before():
    assert starts(["2025-01-15T14:30", "2025-01-14T23:00"], "1d") == ["2025-01-14T23:00"] * 2
    assert starts(["2025-01-14T22:59"], "1d") == ["2025-01-13T23:00"]  # 17:59: the day before
    assert starts(["2025-03-10T13:30"], "1d") == ["2025-03-09T22:00"]  # Monday after DST starts
    days = trade_days(np.array([to_ns("2025-01-14T22:59"), to_ns("2025-01-14T23:00")]))
    assert (days[1] - days[0]) == 1


def test_bucket_ends_and_the_friday_session():
    friday = np.array([to_ns("2025-01-16T23:00")])  # the session of Friday 2025-01-17
    end = bucket_ends(friday, "1d")
    assert from_ns(int(end[0])).isoformat() == "2025-01-17T23:00:00+00:00"
    four = bucket_ends(np.array([to_ns("2025-01-17T19:00")]), "4h")
    assert from_ns(int(four[0])).isoformat() == "2025-01-17T23:00:00+00:00"
    # the session holding the November clock change (Sunday 2025-11-02) ends 25 hours later
    sunday = np.array([to_ns("2025-11-01T22:00")])
    assert int(bucket_ends(sunday, "1d")[0] - sunday[0]) == 25 * 3_600_000_000_000
