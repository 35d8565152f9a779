"""The schedules of the DAGs (parse-time, light).

A scheduled run stands for one UTC day: ``[day 00:00, next day 00:00)``, its data
interval, which it loads exactly (Airflow 3's ``@daily`` would give zero-length
intervals). The same holds for the runs of Airflow's Backfill dialog.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime

from airflow.sdk import CronDataIntervalTimetable

DAILY = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
FIRST_DAY_ENV = "MARKET_BACKFILL_FIRST_DAY"
DEFAULT_FIRST_DAY = date(2026, 11, 1)


def first_day(environ: Mapping[str, str] = os.environ) -> datetime:
    """The first scheduled day (``MARKET_BACKFILL_FIRST_DAY``, ``YYYY-MM-DD``; default
    2026-11-01). With catch-up on, unpausing a DAG creates a run for every day since: set
    it to the day you deploy; load older history with dates or the Backfill dialog."""
    text = environ.get(FIRST_DAY_ENV, "").strip()
    try:
        day = date.fromisoformat(text) if text else DEFAULT_FIRST_DAY
    except ValueError:
        raise ValueError(f"{FIRST_DAY_ENV} must be a date YYYY-MM-DD, got {text!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


FIRST_DAY = first_day()

BATCH_POKE_ENV = "MARKET_BACKFILL_BATCH_POKE_SECONDS"


def batch_poke_seconds(environ: Mapping[str, str] = os.environ) -> float:
    """How often the batch sensor asks Databento whether its jobs are done
    (``MARKET_BACKFILL_BATCH_POKE_SECONDS``, default 60); between pokes no slot is held."""
    text = environ.get(BATCH_POKE_ENV, "").strip()
    try:
        seconds = float(text) if text else 60.0
    except ValueError:
        raise ValueError(f"{BATCH_POKE_ENV} must be a number of seconds, got {text!r}") from None
    if seconds <= 0:
        raise ValueError(f"{BATCH_POKE_ENV} must be positive, got {text!r}")
    return seconds
