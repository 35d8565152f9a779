"""Wall-clock time in named time zones from the standard library's ``zoneinfo``.

The triangle and feature tasks convert between UTC and exchange time without pandas (half
a second of every task process's start): a Python step per day or clock change at most,
never per bar; the bars themselves go through numpy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from market_backfill.names import DAY_S, SECOND_NS


def local_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in ``zone``. A time a clock change skips
    gives the change itself (the first time after the gap), a time it repeats the second
    (standard-time) occurrence, as pandas' ``tz_localize(ambiguous=False,
    nonexistent="shift_forward")``."""
    utc = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == wall:
        return utc
    # in a gap: fold=1 reads the wall time with the offset after the change (too early),
    # fold=0 with the one before (too late, past the change); the change lies between
    too_late = int(wall.replace(tzinfo=zone, fold=0).astimezone(UTC).timestamp())
    change = _change_at(zone, int(utc.timestamp()), too_late, _offset_s(zone, too_late))
    return datetime.fromtimestamp(change, UTC)


def _offset_s(zone: ZoneInfo, t: int) -> int:
    """UTC offset (seconds) of ``zone`` at Unix second ``t``."""
    offset = datetime.fromtimestamp(t, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _change_at(zone: ZoneInfo, before: int, at: int, offset: int) -> int:
    """The first Unix second in ``(before, at]`` where ``zone``'s offset is ``offset`` (it is
    at ``at``, not at ``before``; a clock change falls on a whole second)."""
    while at - before > 1:
        mid = (before + at) // 2
        if _offset_s(zone, mid) == offset:
            at = mid
        else:
            before = mid
    return at


def utc_offsets_ns(ts_ns: np.ndarray, zone_name: str) -> np.ndarray:
    """Each instant's UTC offset in ``zone_name`` in nanoseconds (wall = ts + offset), as
    ``tz_convert`` gives it: the offset at every UTC midnight of the span, each change
    between two midnights found to the second (a zone changes at most once a day)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    if ts.size == 0:
        return np.zeros(ts.shape, dtype=np.int64)
    zone = ZoneInfo(zone_name)
    first = int(ts.min()) // SECOND_NS // DAY_S * DAY_S - DAY_S
    last = int(ts.max()) // SECOND_NS // DAY_S * DAY_S + DAY_S
    starts, offsets = [first], [_offset_s(zone, first)]
    for midnight in range(first + DAY_S, last + 1, DAY_S):
        offset = _offset_s(zone, midnight)
        if offset == offsets[-1]:
            continue
        starts.append(_change_at(zone, midnight - DAY_S, midnight, offset))
        offsets.append(offset)
    at = np.searchsorted(np.array(starts, dtype=np.int64) * SECOND_NS, ts, side="right") - 1
    return np.array(offsets, dtype=np.int64)[at] * SECOND_NS
