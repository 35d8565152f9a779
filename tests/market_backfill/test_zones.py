"""Wall-clock conversions from zoneinfo, exact against pandas (the reference)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from market_backfill.timeutil import to_ns
from market_backfill.zones import local_to_utc, utc_offsets_ns

ZONES = ["America/New_York", "America/Chicago", "Europe/London", "Australia/Sydney"]
ZONES += ["Asia/Kolkata", "UTC"]


def _pandas_offsets(ts: np.ndarray, zone: str) -> np.ndarray:
    idx = pd.DatetimeIndex(ts.view("datetime64[ns]"), tz="UTC")
    return idx.tz_convert(zone).tz_localize(None).as_unit("ns").asi8 - ts


@pytest.mark.parametrize("zone", ZONES)
def test_offsets_equal_pandas_tz_convert_over_twenty_years(zone):
    rng = np.random.default_rng(7)
    lo, hi = to_ns("2006-01-01"), to_ns("2026-12-31")
    ts = np.sort(rng.integers(lo, hi, 200_000)) // 60_000_000_000 * 60_000_000_000
    assert utc_offsets_ns(ts, zone).tolist() == _pandas_offsets(ts, zone).tolist()


@pytest.mark.parametrize("zone", ZONES[:4])
def test_offsets_change_on_the_second_of_each_clock_change(zone):
    """One second before and at every change of 2024 and 2025."""
    seconds = np.arange(to_ns("2024-01-01") // 10**9, to_ns("2026-01-01") // 10**9, 1800)
    coarse = _pandas_offsets(seconds * 10**9, zone)
    changes = seconds[1:][coarse[1:] != coarse[:-1]]
    assert len(changes) == 4
    around = np.concatenate([np.arange(c - 1800, c + 1, dtype=np.int64) for c in changes])
    ts = around * 10**9
    assert utc_offsets_ns(ts, zone).tolist() == _pandas_offsets(ts, zone).tolist()


def test_no_instants_no_offsets():
    assert utc_offsets_ns(np.array([], dtype=np.int64), "America/New_York").tolist() == []


@pytest.mark.parametrize(
    ("wall", "want"),
    [
        ("2025-03-09T18:00", "2025-03-09T22:00Z"),  # the session open after the change
        ("2025-03-09T02:30", "2025-03-09T07:00Z"),  # skipped: the change itself (03:00 EDT)
        ("2025-11-02T01:30", "2025-11-02T06:30Z"),  # repeated: the second, standard time
        ("2025-07-01T12:00", "2025-07-01T16:00Z"),
    ],
)
def test_local_to_utc_in_new_york(wall, want):
    got = local_to_utc(datetime.fromisoformat(wall), ZoneInfo("America/New_York"))
    assert got == datetime.fromisoformat(want).astimezone(UTC)
    stamp = pd.Timestamp(wall).tz_localize(
        "America/New_York", ambiguous=False, nonexistent="shift_forward"
    )
    assert to_ns(got) == stamp.value
