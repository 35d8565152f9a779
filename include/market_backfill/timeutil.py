"""Conversions between datetimes and Databento's int64 nanoseconds (explicit units).

Plain ``datetime`` arithmetic, no pandas: the planning and summary tasks import this
module, and pandas costs a task process about half a second to import.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta

from market_backfill.names import SECOND_NS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")


def _sub_micro_ns(text: str) -> int:
    """The nanoseconds below the microsecond in an ISO 8601 text's fraction of a second
    (``datetime.fromisoformat`` drops digits after the sixth)."""
    found = _FRACTION.search(text)
    return int(found.group(1)[6:9].ljust(3, "0")) if found and len(found.group(1)) > 6 else 0


def to_ns(ts: datetime | str) -> int:
    """UTC nanoseconds since the epoch of a datetime (a pandas Timestamp keeps its
    nanoseconds) or an ISO 8601 text; naive inputs are taken as UTC."""
    if isinstance(ts, str):
        nanos, ts = _sub_micro_ns(ts), datetime.fromisoformat(ts)
    else:
        nanos = int(getattr(ts, "nanosecond", 0))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return calendar.timegm(ts.utctimetuple()) * SECOND_NS + ts.microsecond * 1000 + nanos


def from_ns(ns: int) -> datetime:
    """A timezone-aware UTC datetime (microsecond precision, the nanoseconds below cut)
    for ``ns``."""
    return EPOCH + timedelta(microseconds=int(ns) // 1000)


def day_start(d: date) -> datetime:
    """Midnight UTC of ``d``."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def floor_minute(ts: datetime) -> datetime:
    """``ts`` in UTC, cut to its minute."""
    return ts.astimezone(UTC).replace(second=0, microsecond=0)
