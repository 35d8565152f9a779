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
DEFAULT_START = datetime(2026, 11, 1, tzinfo=UTC)
"""The time-scheduled DAGs' ``start_date`` without ``MARKET_BACKFILL_FIRST_DAY``: they do
not catch up then, so only the latest day runs and no earlier day is ever created."""


def first_day(environ: Mapping[str, str] = os.environ) -> datetime | None:
    """The first scheduled day ``ohlcv_reingest`` catches up from
    (``MARKET_BACKFILL_FIRST_DAY``, ``YYYY-MM-DD``), or None when it is not set."""
    text = environ.get(FIRST_DAY_ENV, "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{FIRST_DAY_ENV} must be a date YYYY-MM-DD, got {text!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def daily_start(environ: Mapping[str, str] = os.environ) -> tuple[datetime, bool]:
    """(``start_date``, ``catchup``) of ``ohlcv_reingest``'s daily schedule, read when the
    DAG file is parsed. With ``MARKET_BACKFILL_FIRST_DAY``: that day, catching up (after
    downtime every missed day runs, each a paid request). Without: no catch-up, so
    unpausing the DAG or starting it after downtime runs only the latest day (the days
    missed meanwhile are gaps: ``gap_detection``'s daily 30-day look-back repairs them)."""
    day = first_day(environ)
    return (DEFAULT_START, False) if day is None else (day, True)


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
