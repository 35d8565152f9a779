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


def test_the_batch_poke_interval_comes_from_the_environment_or_the_default():
    from market_backfill.airflow.schedules import batch_poke_seconds

    assert batch_poke_seconds({}) == 60.0
    assert batch_poke_seconds({"MARKET_BACKFILL_BATCH_POKE_SECONDS": "2.5"}) == 2.5
    for bad in ("soon", "0", "-1"):
        with pytest.raises(ValueError, match="MARKET_BACKFILL_BATCH_POKE_SECONDS must be"):
            batch_poke_seconds({"MARKET_BACKFILL_BATCH_POKE_SECONDS": bad})
