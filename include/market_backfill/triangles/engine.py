"""The triangle engine: a pure function from one symbol's bars to triangle events.

Implements ../shared/spec/triangle-signals.md exactly: segments (anchors), the FVG bias
engine on 1-minute bars and on UTC-aligned higher-timeframe (HTF) bars, alignment,
engulfing and sweep filters, warm-up. All of it is vectorised numpy, the bias engine's
zones included (:mod:`market_backfill.triangles.fvg_bias`): no compiler. Inputs are
int64 arrays: ``ts`` (bar open time, ns UTC) and int64 fixed-point prices (1e-9), sorted
by ``ts``, hygiene already applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from market_backfill.errors import ParamError
from market_backfill.names import (
    DAY_NS,
    DEFAULT_SESSION_ANCHOR,
    MINUTE_NS,
    SECOND_NS,
    TRIANGLE_FLAGS,
)
from market_backfill.timeutil import EPOCH, to_ns
from market_backfill.triangles.bias import BEARISH, BULLISH, NEUTRAL
from market_backfill.triangles.fvg_bias import bias_series
from market_backfill.zones import local_to_utc

if TYPE_CHECKING:
    import pandas as pd

LOGIC_VERSION = "triangles-1.0"
TIMEFRAMES: tuple[tuple[str, int], ...] = (
    ("5m", 5),
    ("15m", 15),
    ("1h", 60),
    ("4h", 240),
    ("1d", 1440),
)
BIAS_NAMES = {NEUTRAL: "Neutral", BULLISH: "Bullish", BEARISH: "Bearish"}
ANCHORS = ("weekly", "session", "fixed")
_NO_SEGMENT = np.iinfo(np.int64).min


@dataclass(frozen=True)
class TriangleSettings:
    """The filter settings of a triangle run (stored with every event row)."""

    anchor: str = "weekly"
    anchor_at: str | None = None  # ISO timestamp, for anchor 'fixed'
    warmup: int = 5
    htf_aligned_only: bool = False
    use_5m: bool = False
    use_15m: bool = False
    use_1h: bool = False
    use_4h: bool = False
    use_1d: bool = False
    require_engulfing: bool = False
    require_sweep_engulfing: bool = False
    # where the symbol's sessions open ("HH:MM Area/City", the registry's session anchor):
    # the weekly and session anchors fall there (18:00 New York on CME Globex, 19:00
    # Chicago for the grains). Not a setting of the run: not stored with the events.
    session_anchor: str = DEFAULT_SESSION_ANCHOR

    def __post_init__(self) -> None:
        """Each field is the DAG param of the same name: a bad one is a ParamError."""
        if self.anchor not in ANCHORS:
            raise ParamError(
                "anchor", f"param 'anchor' must be one of {list(ANCHORS)}, got {self.anchor!r}"
            )
        if self.anchor == "fixed" and not self.anchor_at:
            raise ParamError(
                "anchor_at", "param 'anchor' 'fixed' needs anchor_at, e.g. '2010-06-06T00:00:00Z'"
            )
        if self.anchor == "fixed":
            try:
                self._anchor_ns()
            except ValueError:
                raise ParamError(
                    "anchor_at",
                    f"param 'anchor_at' must be an ISO 8601 time, e.g. '2010-06-06T00:00:00Z', "
                    f"got {self.anchor_at!r}",
                ) from None
        if not isinstance(self.warmup, int) or isinstance(self.warmup, bool) or self.warmup < 0:
            raise ParamError(
                "warmup", f"param 'warmup' must be an integer >= 0, got {self.warmup!r}"
            )

    @property
    def anchor_label(self) -> str:
        """``weekly``, ``session`` or ``fixed:<UTC timestamp>`` (the stored anchor)."""
        if self.anchor != "fixed":
            return self.anchor
        return "fixed:" + iso_utc(self._anchor_ns())

    def _anchor_ns(self) -> int:
        assert self.anchor_at is not None
        return to_ns(self.anchor_at)

    def enabled(self) -> list[str]:
        return [tf for tf, _ in TIMEFRAMES if getattr(self, f"use_{tf}")]

    def as_row(self) -> dict[str, Any]:
        """The settings columns of ``triangle_events_v1`` (:data:`SETTING_COLUMNS`)."""
        return {"anchor": self.anchor_label, "warmup": self.warmup} | {
            flag: getattr(self, flag) for flag in TRIANGLE_FLAGS
        }


SETTING_COLUMNS = ("anchor", "warmup", *TRIANGLE_FLAGS)
"""The settings stored with every event: part of its identity (unique key)."""


# -- segments --------------------------------------------------------------------------------


def iso_utc(ns: int) -> str:
    """ISO 8601 of a UTC instant as pandas writes it: seconds, then 6 or (when there are
    nanoseconds) 9 fraction digits if any, then ``+00:00``."""
    seconds, frac = divmod(int(ns), SECOND_NS)
    text = (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += f".{frac:09d}" if frac % 1000 else f".{frac // 1000:06d}"
    return text + "+00:00"


def anchor_times(settings: TriangleSettings, lo_ns: int, hi_ns: int) -> np.ndarray:
    """Every anchor instant (ns UTC) from before ``lo_ns`` up to after ``hi_ns``: the
    session anchor's wall time on every day (``session``) or Sunday (``weekly``) from 8
    days before ``lo_ns``'s UTC day to 8 days after ``hi_ns``'s."""
    if settings.anchor == "fixed":
        return np.array([settings._anchor_ns()], dtype=np.int64)
    first = date.fromordinal(EPOCH.date().toordinal() + lo_ns // DAY_NS - 8)
    last = date.fromordinal(EPOCH.date().toordinal() + hi_ns // DAY_NS + 8)
    clock, zone_name = settings.session_anchor.split(" ", 1)
    hours, minutes = (int(part) for part in clock.split(":"))
    zone = ZoneInfo(zone_name)
    days = (first + timedelta(days=k) for k in range((last - first).days + 1))
    walls = (
        datetime(d.year, d.month, d.day, hours, minutes)
        for d in days
        if settings.anchor == "session" or d.weekday() == 6  # weekly: Sundays
    )
    utc = [local_to_utc(wall, zone) for wall in walls]  # one per day, not per bar
    return np.array([to_ns(u) for u in utc], dtype=np.int64)


def segment_of(ts: np.ndarray, settings: TriangleSettings) -> np.ndarray:
    """The anchor instant starting each bar's segment (a sentinel before a fixed anchor)."""
    if len(ts) == 0:
        return np.empty(0, dtype=np.int64)
    anchors = anchor_times(settings, int(ts.min()), int(ts.max()))
    pos = np.searchsorted(anchors, ts, side="right") - 1
    return np.where(pos >= 0, anchors[np.maximum(pos, 0)], _NO_SEGMENT)


def segment_start(ts_ns: int, settings: TriangleSettings) -> int:
    """Start of the segment containing ``ts_ns``: where a chunk must start reading."""
    seg = int(segment_of(np.array([ts_ns], dtype=np.int64), settings)[0])
    return ts_ns if seg == _NO_SEGMENT else seg


def segment_end(ts_ns: int, settings: TriangleSettings) -> int | None:
    """Start of the next segment after the one containing ``ts_ns`` (where a change of a
    bar at ``ts_ns`` stops mattering), or None: the segment never ends (``fixed``)."""
    anchors = anchor_times(settings, ts_ns, ts_ns)
    later = anchors[anchors > ts_ns]
    return int(later[0]) if len(later) else None


# -- the engine ------------------------------------------------------------------------------


@dataclass
class EngineResult:
    """Per-bar arrays (aligned with the input) and the triangle bars."""

    bias: dict[str, np.ndarray]  # '1m', '5m', ... -> int8 bias seen at each bar
    bull: np.ndarray  # bool: BULL triangle at the bar
    bear: np.ndarray
    htf_bullish: np.ndarray
    htf_bearish: np.ndarray

    def event_columns(self, ts: np.ndarray) -> dict[str, np.ndarray]:
        """One entry per triangle, by column: ts, direction, bias_* names, htf flags
        (in ``ts`` order)."""
        idx = np.flatnonzero(self.bull | self.bear)
        names = np.array([BIAS_NAMES[k] for k in sorted(BIAS_NAMES)])  # fixed-width text
        return {
            "ts": ts[idx],
            "direction": np.where(self.bull[idx], "BULL", "BEAR"),
            **{f"bias_{tf}": names[self.bias[tf][idx]] for tf in self.bias},
            "htf_bullish": self.htf_bullish[idx],
            "htf_bearish": self.htf_bearish[idx],
        }

    def events(self, ts: np.ndarray) -> pd.DataFrame:
        """:meth:`event_columns` as a DataFrame (reports and tests)."""
        import pandas as pd

        return pd.DataFrame(self.event_columns(ts))


def _htf_seen(
    ts: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    seg: np.ndarray,
    new_seg: np.ndarray,
    minutes: int,
) -> np.ndarray:
    """Bias of one HTF engine as seen by each 1-minute bar (section 4)."""
    n = len(ts)
    tf_ns = minutes * MINUTE_NS
    bucket = ts // tf_ns
    first = new_seg.copy()
    first[1:] |= bucket[1:] != bucket[:-1]
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], n) - 1  # last bar of each group
    g_high = np.maximum.reduceat(high, starts)
    g_low = np.minimum.reduceat(low, starts)
    g_close = close[ends]
    g_seg = seg[starts]
    g_bias = bias_series(g_high, g_low, g_close, new_seg[starts])
    complete = ts[ends] + MINUTE_NS == (bucket[ends] + 1) * tf_ns
    n_groups = len(starts)
    next_same_seg = np.zeros(n_groups, dtype=bool)
    next_same_seg[:-1] = g_seg[1:] == g_seg[:-1]
    close_at = np.full(n_groups, -1, dtype=np.int64)
    close_at[complete] = ends[complete]
    late = ~complete & next_same_seg
    close_at[late] = starts[1:][late[:-1]]
    closed = np.flatnonzero(close_at >= 0)
    latest = np.full(n, -1, dtype=np.int64)
    np.maximum.at(latest, close_at[closed], closed)
    latest = np.maximum.accumulate(latest)
    valid = latest >= 0
    valid[valid] &= g_seg[latest[valid]] == seg[valid]
    return np.where(valid, g_bias[np.maximum(latest, 0)], NEUTRAL).astype(np.int8)


def run_engine(
    ts: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    settings: TriangleSettings,
) -> EngineResult:
    """Triangles of one symbol's good bars (sections 2-6)."""
    n = len(ts)
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    o, h, lo, c = (np.ascontiguousarray(a, dtype=np.int64) for a in (open_, high, low, close))
    seg = segment_of(ts, settings)
    new_seg = np.ones(n, dtype=bool)
    new_seg[1:] = seg[1:] != seg[:-1]
    bias = {"1m": bias_series(h, lo, c, new_seg)}
    for tf, minutes in TIMEFRAMES:
        bias[tf] = _htf_seen(ts, h, lo, c, seg, new_seg, minutes) if n else bias["1m"].copy()
    positions = np.arange(n)
    index_in_segment = positions - np.maximum.accumulate(np.where(new_seg, positions, 0))
    eligible = index_in_segment >= max(settings.warmup, 1)
    prev = np.roll(bias["1m"], 1)
    po, ph, pl, pc = (np.roll(a, 1) for a in (o, h, lo, c))
    enabled = settings.enabled()
    htf_bullish = np.ones(n, dtype=bool)
    htf_bearish = np.ones(n, dtype=bool)
    for tf in enabled:
        htf_bullish &= bias[tf] == BULLISH
        htf_bearish &= bias[tf] == BEARISH
    bull = eligible & (bias["1m"] == BULLISH) & (prev != BULLISH)
    bear = eligible & (bias["1m"] == BEARISH) & (prev != BEARISH)
    if settings.htf_aligned_only:
        bull &= htf_bullish
        bear &= htf_bearish
    bull_engulf = (c > o) & (pc < po) & (o <= pc) & (c > po)
    bear_engulf = (c < o) & (pc > po) & (o >= pc) & (c < po)
    if settings.require_sweep_engulfing:
        bull &= bull_engulf & (lo < pl)
        bear &= bear_engulf & (h > ph)
    elif settings.require_engulfing:
        bull &= bull_engulf
        bear &= bear_engulf
    return EngineResult(bias, bull, bear, htf_bullish, htf_bearish)
