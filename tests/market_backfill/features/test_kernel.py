"""The feature kernel against the literal reference of features.md (tests/support)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market_backfill.features.columns import FEATURE_COLUMNS
from market_backfill.features.compute import bar_features, month_start_ns, origin_index
from market_backfill.features.kernel import linear_recurrence, window_sums
from market_backfill.features.rollup import rollup
from market_backfill.features.timeframes import session_ids
from market_backfill.names import TIMEFRAMES
from market_backfill.timeutil import from_ns, to_ns
from tests.support import feature_reference as ref

NANO = Decimal(1_000_000_000)


def series(start: datetime, steps: list[tuple[int, int, int, int, int]]) -> list[ref.Bar]:
    """1-minute bars from (minutes to skip, close move, wick up, wick down, volume) ticks of
    0.25 around 20000; ``skip`` > 0 leaves holes (breaks, holidays, gaps)."""
    bars, ts, close = [], start, Decimal("20000")
    for skip, move, up, down, volume in steps:
        ts += timedelta(minutes=1 + skip)
        o = close
        close = o + Decimal(move) / 4
        bars.append(
            (
                ts,
                o,
                max(o, close) + Decimal(up) / 4,
                min(o, close) - Decimal(down) / 4,
                close,
                volume,
            )
        )
    return bars


def arrays(bars: list[ref.Bar]) -> dict[str, np.ndarray]:
    return {
        "ts": np.array([to_ns(b[0]) for b in bars], dtype=np.int64),
        **{
            k: np.array([int(b[i] * NANO) for b in bars], dtype=np.int64)
            for i, k in enumerate(("open", "high", "low", "close"), start=1)
        },
        "volume": np.array([b[5] for b in bars], dtype=np.int64),
    }


def library(bars: list[ref.Bar], tf: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    a = arrays(bars)
    agg = a if tf == "1m" else rollup(a, tf, int(a["ts"][-1]))
    return agg, bar_features(agg)._asdict()


def assert_matches(expected: list[dict], ts: np.ndarray, got: dict[str, np.ndarray]) -> None:
    assert [to_ns(r["ts"]) for r in expected] == ts.tolist()
    for name in FEATURE_COLUMNS:
        for i, row in enumerate(expected):
            value = got[name][i]
            mine = None if np.isnan(value) else float(value)
            assert ref.close_enough(row[name], mine), (name, i, row[name], mine)


def random_steps(
    seed: int, n: int, gappy: bool, flat: bool
) -> list[tuple[int, int, int, int, int]]:
    """``n`` random ticks for :func:`series`: some long holes when ``gappy``, runs of
    unchanged closes and zero volume when ``flat`` (RSI's and VWAP's edge cases)."""
    rng = np.random.default_rng(seed)
    skips = (
        rng.choice([0] * 12 + [1, 3, 7, 60, 61, 600, 1500, 3000], n) if gappy else np.zeros(n, int)
    )
    moves = rng.integers(-12, 13, n) * (rng.random(n) < (0.3 if flat else 1.0))
    volume = rng.choice([0, 0, 1, 2, 5, 10, 100, 250, 1000] if flat else [1, 50, 500], n)
    wicks = rng.integers(0, 7, (n, 2))
    return [
        (int(a), int(b), int(c), int(d), int(e))
        for a, b, c, d, e in zip(skips, moves, wicks[:, 0], wicks[:, 1], volume, strict=True)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 2500),
    gappy=st.booleans(),
    flat=st.booleans(),
    tf=st.sampled_from(TIMEFRAMES),
)
def test_random_series_match_the_reference(seed, n, gappy, flat, tf):
    start = datetime(2025, 3, 7, 20, 0, tzinfo=UTC)  # across the March DST change
    bars = series(start, random_steps(seed, n, gappy, flat))
    agg, got = library(bars, tf)
    expected_bars = ref.aggregate(bars, tf)
    assert [to_ns(b["ts"]) for b in expected_bars] == agg["ts"].tolist()
    for key in ("open", "high", "low", "close"):
        assert [int(b[key] * NANO) for b in expected_bars] == agg[key].tolist()
    assert [b["volume"] for b in expected_bars] == agg["volume"].tolist()
    if tf != "1m":
        assert [b["bars"] for b in expected_bars] == agg["bars"].tolist()
        assert [b["complete"] for b in expected_bars] == agg["complete"].tolist()
    assert_matches(ref.features(expected_bars), agg["ts"], got)


def globex_minutes(first: datetime, last: datetime) -> list[datetime]:
    """Every Globex minute (Sunday 18:00 to Friday 17:00 New York, daily 17:00-18:00 break,
    no session on 2025-11-27, Thanksgiving) between two instants."""
    out, ts = [], first
    while ts < last:
        ny = ts.astimezone(ref.NY)
        trade = ref.trade_date(ts)
        if ny.hour != 17 and trade.weekday() < 5 and str(trade) != "2025-11-27":
            out.append(ts)
        ts += timedelta(minutes=1)
    return out


@pytest.fixture(scope="module")
def autumn() -> list[ref.Bar]:
    """Ten weeks of Globex minutes across the November DST change and Thanksgiving."""
    rng = np.random.default_rng(7)
    minutes = globex_minutes(
        datetime(2025, 10, 12, 22, tzinfo=UTC), datetime(2025, 12, 20, tzinfo=UTC)
    )
    moves = rng.integers(-8, 9, len(minutes))
    bars, close = [], Decimal("21000")
    for ts, move, vol in zip(minutes, moves, rng.integers(0, 400, len(minutes)), strict=True):
        o = close
        close = o + Decimal(int(move)) / 4
        bars.append(
            (
                ts,
                o,
                max(o, close) + Decimal("0.25"),
                min(o, close) - Decimal("0.5"),
                close,
                int(vol),
            )
        )
    return bars


@pytest.mark.parametrize("tf", TIMEFRAMES)
def test_a_chunk_per_month_equals_the_single_pass(autumn, tf):
    """Months computed from their warm-up origin (DST change and a holiday inside)."""
    agg, whole = library(autumn, tf)
    ts = agg["ts"]
    for month in ("2025-10", "2025-11", "2025-12"):
        start = month_start_ns(datetime.fromisoformat(f"{month}-01T00:00:00+00:00"))
        end = month_start_ns(from_ns(start) + timedelta(days=32))
        origin = origin_index(ts, start)
        part = {k: v[origin:] for k, v in agg.items()}
        chunk = bar_features(part)._asdict()
        keep = (ts[origin:] >= start) & (ts[origin:] < end)
        rows = np.flatnonzero((ts >= start) & (ts < end))
        assert keep.sum() == len(rows) > 0
        for name in FEATURE_COLUMNS:
            a, b = whole[name][rows], chunk[name][keep]
            assert np.array_equal(np.isnan(a), np.isnan(b)), name
            ok = np.isnan(a) | (np.abs(a - b) <= 1e-9 * np.maximum(1.0, np.abs(a)))
            assert ok.all(), (name, np.abs(a - b).max())


def test_the_autumn_series_matches_the_reference(autumn):
    """Sessions across the DST change and Thanksgiving: 4h and 1d buckets, session VWAP."""
    for tf in ("4h", "1d", "1h"):
        agg, got = library(autumn, tf)
        assert_matches(ref.features(ref.aggregate(autumn, tf)), agg["ts"], got)
    agg, _ = library(autumn, "4h")
    opens_ny = {from_ns(int(t)).astimezone(ref.NY).strftime("%H:%M") for t in agg["ts"]}
    assert opens_ny == {"18:00", "22:00", "02:00", "06:00", "10:00", "14:00"}
    daily, _ = library(autumn, "1d")
    assert all(from_ns(int(t)).astimezone(ref.NY).strftime("%H:%M") == "18:00" for t in daily["ts"])
    assert "2025-11-26" not in {str(from_ns(int(t)).astimezone(ref.NY).date()) for t in daily["ts"]}


WINDOWED = {"ret_1": 1, "log_ret_1": 1, "tr": 1, "sma_50": 49, "vol_30": 30, "volume_z_20": 19}
"""The non-recursive features, each with the bars its window needs before it (the first
bar's ``tr`` is ``h - l`` alone); ``vwap_session`` needs none from a session's start."""


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(300, 3000), cut=st.integers(0, 59))
def test_a_bar_s_window_features_have_the_same_bits_whatever_the_first_bar(seed, n, cut):
    """The non-recursive features of a bar depend on its window (or session) alone: a pass
    from a later first bar, at a session's start, gives the very bits (the arrays'
    alignment, lengths and block boundaries change)."""
    # 16:30 New York: the next session opens within the first 91 bars
    bars = series(datetime(2025, 3, 6, 21, 30, tzinfo=UTC), random_steps(seed, n, True, True))
    a = arrays(bars)
    whole = bar_features(a)._asdict()
    sessions = np.flatnonzero(np.diff(session_ids(a["ts"]))) + 1
    starts = [s for s in sessions.tolist() if s + 60 < n]
    first = starts[cut % len(starts)]
    assert first > 0
    part = bar_features({k: v[first:] for k, v in a.items()})._asdict()
    for name, skip in {**WINDOWED, "vwap_session": 0}.items():
        got, want = part[name][skip:], whole[name][first + skip :]
        assert np.array_equal(got, want, equal_nan=True), name


@pytest.mark.parametrize("alpha", [1 / 14, 2 / 21, 0.5, 1e-3])
@pytest.mark.parametrize("n", [1, 127, 128, 129, 5000])
def test_the_blocked_recurrence_equals_the_sequential_loop(alpha, n):
    """Closed-form blocks against ``y = alpha * x + (1 - alpha) * y`` one step at a time,
    on prices that cross zero (crude oil in 2020), within a few units in the last place of
    the inputs' scale."""
    rng = np.random.default_rng(n)
    x = np.cumsum(rng.normal(0, 3, n)) + rng.choice([-40.0, 0.0, 20000.0])
    y0 = float(x[0]) * 0.9
    want, y = np.empty(n), y0
    for i, value in enumerate(x.tolist()):
        y = alpha * value + (1 - alpha) * y
        want[i] = y
    got = linear_recurrence(x, alpha, y0)
    scale = np.maximum(1.0, np.abs(x).max())
    assert np.abs(got - want).max() <= 1e-12 * scale


def test_window_sums_add_left_to_right_like_a_loop():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1e6, 500) * rng.choice([1e-9, 1.0, 1e9], 500)
    got = window_sums(x, 50)
    for i in range(len(got)):
        s = 0.0
        for v in x[i : i + 50].tolist():
            s += v
        assert got[i] == s
