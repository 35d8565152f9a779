from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.airflow.schedules import first_day


def test_the_first_scheduled_day_comes_from_the_environment_and_decides_catch_up():
    from market_backfill.airflow.schedules import DEFAULT_START, daily_start

    assert first_day({}) is None
    assert first_day({"MARKET_BACKFILL_FIRST_DAY": "  "}) is None
    day = datetime(2027, 2, 3, tzinfo=UTC)
    assert first_day({"MARKET_BACKFILL_FIRST_DAY": " 2027-02-03 "}) == day
    with pytest.raises(ValueError, match="MARKET_BACKFILL_FIRST_DAY must be a date"):
        first_day({"MARKET_BACKFILL_FIRST_DAY": "yesterday"})
    assert daily_start({"MARKET_BACKFILL_FIRST_DAY": "2027-02-03"}) == (day, True)
    assert daily_start({}) == (DEFAULT_START, False)


def test_the_batch_poke_interval_comes_from_the_environment_or_the_default():
    from market_backfill.airflow.schedules import batch_poke_seconds

    assert batch_poke_seconds({}) == 60.0
    assert batch_poke_seconds({"MARKET_BACKFILL_BATCH_POKE_SECONDS": "2.5"}) == 2.5
    for bad in ("soon", "0", "-1"):
        with pytest.raises(ValueError, match="MARKET_BACKFILL_BATCH_POKE_SECONDS must be"):
            batch_poke_seconds({"MARKET_BACKFILL_BATCH_POKE_SECONDS": bad})
