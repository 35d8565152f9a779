from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.airflow.schedules import first_day


def test_the_first_scheduled_day_comes_from_the_environment_or_the_default():
    assert first_day({}) == datetime(2026, 11, 1, tzinfo=UTC)
    assert first_day({"MARKET_BACKFILL_FIRST_DAY": " 2027-02-03 "}) == datetime(
        2027, 2, 3, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="MARKET_BACKFILL_FIRST_DAY must be a date"):
        first_day({"MARKET_BACKFILL_FIRST_DAY": "yesterday"})
