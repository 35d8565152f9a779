"""Nanosecond conversions: exact against pandas (the reference), without importing it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import pytest

from market_backfill.timeutil import day_start, floor_minute, from_ns, to_ns
from tests.support.imports import loaded_after

NEW_YORK_WINTER = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    "value",
    [
        "2025-12-01",
        "2025-12-02T14:00",
        "2025-01-01 00:00:00+00:00",
        "2025-11-25T00:00:00.000000000Z",  # Databento's metadata ends
        "2025-11-25T13:30:00.123456789Z",
        "2025-11-25T13:30:00.1234567+01:00",
        "2025-03-09T02:30:00.5-05:00",
        "1969-12-31T23:59:59.999999999Z",
    ],
)
def test_texts_convert_exactly_as_pandas_does(value):
    stamp = pd.Timestamp(value)
    want = (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).as_unit("ns").value
    assert to_ns(value) == want


def test_datetimes_naive_aware_and_pandas_timestamps_with_nanoseconds():
    assert to_ns(datetime(2025, 1, 1)) == to_ns(datetime(2025, 1, 1, tzinfo=UTC))
    aware = datetime(2025, 1, 1, 9, 30, 0, 250, tzinfo=NEW_YORK_WINTER)
    assert to_ns(aware) == pd.Timestamp(aware).as_unit("ns").value
    with_nanos = pd.Timestamp("2025-06-03T14:05:06.000001234Z")
    assert to_ns(with_nanos) == with_nanos.value
    assert to_ns(pd.Timestamp("2025-06-03T14:05").as_unit("us")) == to_ns("2025-06-03T14:05Z")


def test_from_ns_is_aware_utc_and_cuts_below_the_microsecond():
    ns = pd.Timestamp("2025-06-03T14:05:06.123456789Z").value
    got = from_ns(ns)
    assert got == datetime(2025, 6, 3, 14, 5, 6, 123456, tzinfo=UTC)
    assert got.utcoffset() == timedelta(0)
    assert from_ns(to_ns(got)) == got
    assert from_ns(0) == datetime(1970, 1, 1, tzinfo=UTC)


def test_day_start_and_floor_minute():
    assert day_start(date(2025, 3, 9)) == datetime(2025, 3, 9, tzinfo=UTC)
    late = datetime(2025, 3, 9, 23, 59, 59, 999999, tzinfo=NEW_YORK_WINTER)
    assert floor_minute(late) == datetime(2025, 3, 10, 4, 59, tzinfo=UTC)


def test_the_run_wide_tasks_modules_do_not_import_pandas():
    """The schema, plan and summary steps of every stage, and the params, import neither
    pandas nor the DBN reader (half a second of a task process's start)."""
    setup = (
        "import market_backfill.airflow.chunks, market_backfill.params\n"
        "import market_backfill.timeutil, market_backfill.sources.costs"
    )
    heavy = ["pandas", "databento", "market_backfill.sources.dbn"]
    assert loaded_after(setup, heavy) == []
