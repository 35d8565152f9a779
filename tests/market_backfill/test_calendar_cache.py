"""The sessions cache: each calendar year's periods computed once per host and kept in the
data directory; the same periods as a schedule of the range itself; never stale."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from market_backfill import calendar_cache, trading_calendar
from market_backfill.timeutil import to_ns
from market_backfill.trading_calendar import (
    CME_EQUITY_ERAS,
    SESSION_HISTORY,
    sessions,
    trading_minutes,
)
from tests.support.imports import loaded_after

CAL = "CME Globex Equity"
CALENDARS = [CAL, "CME_Agriculture", "CMEGlobex_Crude"]  # eras; a daily break; plain


def reference(name: str, start: datetime, end: datetime) -> np.ndarray:
    """The periods of ``[start, end)`` from one schedule of that range and two days either
    side, cut to it: how they were computed before the cache."""
    sched = trading_calendar.get_calendar(name).schedule(
        (start - timedelta(days=2)).date().isoformat(), (end + timedelta(days=2)).date().isoformat()
    )
    if name in SESSION_HISTORY:
        periods = trading_calendar._historical_periods(sched, SESSION_HISTORY[name])
    else:
        periods = trading_calendar._calendar_periods(sched)
    opens = np.maximum(periods[:, 0], to_ns(start))
    closes = np.minimum(periods[:, 1], to_ns(end))
    keep = opens < closes
    return np.stack([opens[keep], closes[keep]], axis=1)


def year_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "calendars").glob("*/*.npy"))


def test_cached_periods_equal_a_schedule_of_the_range_itself(data_dir):
    """Random ranges (minutes to years, many across New Year), asked in random order so
    that years are computed alone, several at once and read back from their files."""
    rng = random.Random(17)
    for name in CALENDARS:
        for i in range(40):
            if i % 2:
                year = rng.randrange(2010, 2027)
                start = datetime(year, 1, 1, tzinfo=UTC) + timedelta(
                    minutes=rng.randrange(-3 * 1440, 3 * 1440)
                )
            else:
                start = datetime(2010, 1, 1, tzinfo=UTC) + timedelta(
                    minutes=rng.randrange(0, 16 * 365 * 1440)
                )
            end = start + timedelta(
                minutes=rng.choice([1, 45, 1440, 4 * 1440, 60 * 1440, 900 * 1440])
            )
            assert np.array_equal(sessions(name, start, end), reference(name, start, end)), (
                name,
                start,
                end,
            )
    assert len(year_files(data_dir)) > 3 * 10


def test_a_warm_cache_needs_neither_pandas_nor_the_calendar_library(data_dir):
    """A gap task's process whose years are cached: 15 years of trading minutes from the
    files, pandas and pandas_market_calendars never imported, nothing written."""
    start, end = datetime(2011, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    expected = trading_minutes(CAL, start, end)
    files = {path: path.stat().st_mtime_ns for path in year_files(data_dir)}
    assert len(files) == 16  # 2010 (a period may open before the range) .. 2025
    setup = (
        "from datetime import UTC, datetime\n"
        "import market_backfill.gaps.tasks\n"
        "from market_backfill.trading_calendar import trading_minutes\n"
        f"minutes = trading_minutes({CAL!r}, datetime(2011, 1, 1, tzinfo=UTC), "
        "datetime(2026, 1, 1, tzinfo=UTC))\n"
        f"assert len(minutes) == {len(expected)} and int(minutes[0]) == {int(expected[0])}\n"
        f"assert int(minutes.sum() % 1000003) == {int(expected.sum() % 1000003)}"
    )
    assert loaded_after(setup, ["pandas", "pandas_market_calendars"]) == []
    assert {path: path.stat().st_mtime_ns for path in year_files(data_dir)} == files


def test_the_folder_changes_with_the_calendar_libraries_and_the_session_history(
    data_dir, monkeypatch
):
    """An upgraded calendar library or an edited session history gets a new folder, so
    cached periods are never served stale."""
    key = calendar_cache.cache_key(CAL, repr(CME_EQUITY_ERAS))
    assert calendar_cache.cache_key(CAL, repr(CME_EQUITY_ERAS[:-1])) != key
    monkeypatch.setattr(calendar_cache, "_version", lambda dist: "99.0")
    calendar_cache.cache_key.cache_clear()
    try:
        assert calendar_cache.cache_key(CAL, repr(CME_EQUITY_ERAS)) != key
    finally:
        monkeypatch.undo()
        calendar_cache.cache_key.cache_clear()

    # 2022 cached with today's history (no halt since 2021-06-28) ...
    day = datetime(2022, 3, 15, 19, tzinfo=UTC), datetime(2022, 3, 16, 19, tzinfo=UTC)
    continuous = sessions(CAL, *day)
    # ... then a history without that change: the 15:15-15:30 CT halt is back, not stale
    monkeypatch.setitem(SESSION_HISTORY, CAL, CME_EQUITY_ERAS[:-1])
    halted = sessions(CAL, *day)
    assert len(halted) == len(continuous) + 1
    assert np.array_equal(halted, reference(CAL, *day))


@pytest.mark.parametrize(
    "damage",
    [b"not a numpy file", b""],
    ids=["garbage", "empty"],
)
def test_an_unreadable_file_is_computed_again_and_rewritten(data_dir, damage):
    span = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    good = sessions(CAL, *span)
    path = calendar_cache.year_file(CAL, repr(SESSION_HISTORY[CAL]), 2025)
    path.write_bytes(damage)
    assert np.array_equal(sessions(CAL, *span), good)
    assert np.load(path).shape[1] == 2  # written again


def test_a_file_of_another_shape_is_computed_again(data_dir):
    span = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    good = sessions(CAL, *span)
    path = calendar_cache.year_file(CAL, repr(SESSION_HISTORY[CAL]), 2025)
    np.save(path, np.arange(5, dtype=np.float64))
    assert np.array_equal(sessions(CAL, *span), good)
    assert np.load(path).dtype == np.int64  # written again


def test_a_data_directory_that_cannot_be_written_leaves_the_periods_uncached(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MARKET_BACKFILL_DATA_DIR", str(blocker / "data"))
    span = datetime(2024, 12, 30, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC)
    assert np.array_equal(sessions(CAL, *span), reference(CAL, *span))
    assert blocker.read_text() == "not a folder"
