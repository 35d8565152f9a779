"""Conversions between datetimes and Databento's int64 nanoseconds (explicit units)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd


def to_ns(ts: datetime | str | pd.Timestamp) -> int:
    """UTC nanoseconds since the epoch; naive inputs are taken as UTC."""
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


def from_ns(ns: int) -> datetime:
    """A timezone-aware UTC datetime (microsecond precision) for ``ns``."""
    return pd.Timestamp(int(ns), unit="ns", tz=UTC).to_pydatetime()


def day_start(d: date) -> datetime:
    """Midnight UTC of ``d``."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def floor_minute(ts: datetime) -> datetime:
    """``ts`` in UTC, cut to its minute."""
    return ts.astimezone(UTC).replace(second=0, microsecond=0)
