"""The fast triangle engine against the literal reference, and rule-by-rule cases."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market_backfill.errors import ParamError
from market_backfill.names import TRIANGLE_FLAGS
from market_backfill.timeutil import to_ns
from market_backfill.triangles.bias import BEARISH, BULLISH, NEUTRAL
from market_backfill.triangles.engine import (
    SETTING_COLUMNS,
    TriangleSettings,
    anchor_times,
    iso_utc,
    run_engine,
    segment_of,
    segment_start,
)
from market_backfill.triangles.fvg_bias import bias_series, first_below
from market_backfill_devtools.sample import synthetic_bars
from tests.support.triangle_reference import RefBias, anchor_for, reference_triangles

MIN = 60_000_000_000
TICK = 250_000_000
FLAGS = TRIANGLE_FLAGS


def fast_events(bars: list[tuple], cfg: TriangleSettings) -> list[dict]:
    arr = np.array(bars, dtype=np.int64).reshape(-1, 5)
    result = run_engine(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], cfg)
    return result.events(arr[:, 0]).to_dict("records")


def ref_settings(cfg: TriangleSettings) -> dict:
    out = {f: getattr(cfg, f) for f in FLAGS}
    out.update(anchor=cfg.anchor, warmup=cfg.warmup)
    if cfg.anchor == "fixed":
        out["anchor_ns"] = to_ns(cfg.anchor_at)
    return out


def _normalise(events: list[dict]) -> list[dict]:
    return [
        {
            k: (bool(v) if isinstance(v, np.bool_) else int(v) if isinstance(v, np.integer) else v)
            for k, v in e.items()
        }
        for e in events
    ]


@st.composite
def bar_series(draw):
    n = draw(st.integers(0, 400))
    start = to_ns("2025-03-01T00:00Z") + draw(st.integers(0, 60 * 24 * 30)) * MIN
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from([1] * 12 + [2, 3, 7, 60, 240, 1440, 2880]),  # minutes to next bar
                st.integers(-6, 6),
                st.integers(-6, 6),
                st.integers(0, 3),
                st.integers(0, 3),
            ),
            min_size=n,
            max_size=n,
        )
    )
    bars, ts, close = [], start, 80_000 * TICK
    for gap, d_open, d_close, up, down in steps:
        o = close + d_open * TICK
        c = o + d_close * TICK
        bars.append((ts, o, max(o, c) + up * TICK, min(o, c) - down * TICK, c))
        close = c
        ts += gap * MIN
    return bars


@st.composite
def engine_settings(draw):
    anchor = draw(st.sampled_from(["weekly", "session", "fixed"]))
    flags = {f: draw(st.booleans()) for f in FLAGS}
    return TriangleSettings(
        anchor=anchor,
        anchor_at="2025-03-09T06:30:00Z" if anchor == "fixed" else None,
        warmup=draw(st.sampled_from([0, 1, 2, 5, 30])),
        **flags,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bars=bar_series(), cfg=engine_settings())
def test_fast_engine_equals_the_literal_reference(bars, cfg):
    assert _normalise(fast_events(bars, cfg)) == reference_triangles(bars, ref_settings(cfg))


@pytest.mark.parametrize("anchor", ["weekly", "session"])
@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"htf_aligned_only": True, "use_5m": True, "use_1h": True},
        {"require_engulfing": True},
        {
            "require_sweep_engulfing": True,
            "htf_aligned_only": True,
            "use_15m": True,
            "use_4h": True,
            "use_1d": True,
        },
    ],
)
def test_calendar_weeks_with_dst_and_an_early_close_match_the_reference(anchor, flags):
    # March 2025 (DST starts 03-09) and Thanksgiving week 2025 (early closes 11-28)
    for start, end in (("2025-03-02", "2025-03-16"), ("2025-11-23", "2025-12-01")):
        frame = synthetic_bars(
            "NQ.v.0",
            pd.Timestamp(start, tz="UTC").to_pydatetime(),
            pd.Timestamp(end, tz="UTC").to_pydatetime(),
            seed=5,
            quiet_fraction=0.05,
        )
        bars = list(
            frame[["ts", "open", "high", "low", "close"]].itertuples(index=False, name=None)
        )
        cfg = TriangleSettings(anchor=anchor, **flags)
        fast = _normalise(fast_events(bars, cfg))
        assert fast == reference_triangles(bars, ref_settings(cfg))
        if anchor == "weekly" or not flags.get("use_1d"):
            # (with session anchors a UTC-day bucket never closes inside its session, so a
            # 1d alignment can never hold: the spec's consequence, checked equal above)
            assert len(fast) > 10


# -- anchors ---------------------------------------------------------------------------------


def test_weekly_anchor_is_sunday_18_new_york_in_winter_and_summer():
    cfg = TriangleSettings()
    winter = segment_of(np.array([to_ns("2025-12-01T15:00Z")]), cfg)[0]
    summer = segment_of(np.array([to_ns("2025-06-02T15:00Z")]), cfg)[0]
    assert winter == to_ns("2025-11-30T23:00Z")
    assert summer == to_ns("2025-06-01T22:00Z")


def test_dst_week_anchor_moves_from_23_to_22_utc():
    cfg = TriangleSettings()
    ts = np.array(
        [
            to_ns(t)
            for t in (
                "2025-03-09T21:59Z",
                "2025-03-09T22:00Z",
                "2025-03-02T22:59Z",
                "2025-03-02T23:00Z",
            )
        ]
    )
    seg = segment_of(ts, cfg)
    assert seg.tolist() == [
        to_ns("2025-03-02T23:00Z"),
        to_ns("2025-03-09T22:00Z"),
        to_ns("2025-02-23T23:00Z"),
        to_ns("2025-03-02T23:00Z"),
    ]
    for t, s in zip(ts.tolist(), seg.tolist(), strict=True):
        assert anchor_for(t, "weekly", None) == s


def _pandas_anchor_times(anchor: str, session_anchor: str, lo_ns: int, hi_ns: int) -> np.ndarray:
    """The anchors as pandas computes them (the engine's former implementation)."""
    first = pd.Timestamp(lo_ns, unit="ns", tz="UTC").normalize() - pd.Timedelta(days=8)
    last = pd.Timestamp(hi_ns, unit="ns", tz="UTC").normalize() + pd.Timedelta(days=8)
    freq = "W-SUN" if anchor == "weekly" else "D"
    days = pd.date_range(first.tz_localize(None), last.tz_localize(None), freq=freq)
    clock, zone = session_anchor.split(" ", 1)
    hours, minutes = (int(part) for part in clock.split(":"))
    local = (days + pd.Timedelta(hours=hours, minutes=minutes)).tz_localize(
        zone, ambiguous=False, nonexistent="shift_forward"
    )
    return local.tz_convert("UTC").as_unit("ns").asi8


@pytest.mark.parametrize(
    "session_anchor",
    [
        "18:00 America/New_York",
        "19:00 America/Chicago",
        "02:30 America/New_York",  # skipped on the spring change: shifted to 03:00
        "01:30 America/New_York",  # repeated on the autumn change: the second one
        "01:30 Europe/London",
        "02:15 Europe/Berlin",
        "00:00 Asia/Tokyo",
        "23:45 Australia/Sydney",
    ],
)
@pytest.mark.parametrize("anchor", ["weekly", "session"])
def test_anchor_times_equal_pandas_local_time_rules(anchor, session_anchor):
    """Anchors come from the standard library (no pandas in a triangle task), exactly as
    pandas placed them, clock changes included, over 16 years."""
    cfg = TriangleSettings(anchor=anchor, session_anchor=session_anchor)
    for lo, hi in [("2010-01-01", "2026-01-01"), ("2025-03-01", "2025-03-31")]:
        lo_ns, hi_ns = to_ns(lo), to_ns(hi)
        want = _pandas_anchor_times(anchor, session_anchor, lo_ns, hi_ns)
        assert anchor_times(cfg, lo_ns, hi_ns).tolist() == want.tolist()


@pytest.mark.parametrize(
    "text",
    ["2010-06-06T00:00:00Z", "2025-03-09T07:00:00.5Z", "1999-12-31T23:59:59.000001Z"]
    + ["2025-03-09T07:00:00.000000001Z", "2025-03-09T07:00:00.123456789+00:00"],
)
def test_the_fixed_anchor_label_is_written_as_pandas_wrote_it(text):
    """The label is part of every stored event's identity: it must not change."""
    assert iso_utc(to_ns(text)) == pd.Timestamp(text).tz_convert("UTC").isoformat()
    fixed = TriangleSettings(anchor="fixed", anchor_at=text)
    assert fixed.anchor_label == "fixed:" + pd.Timestamp(text).tz_convert("UTC").isoformat()


def test_session_and_fixed_anchors_and_segment_start():
    ts = to_ns("2025-12-03T10:00Z")
    assert segment_start(ts, TriangleSettings(anchor="session")) == to_ns("2025-12-02T23:00Z")
    fixed = TriangleSettings(anchor="fixed", anchor_at="2010-06-06T00:00:00Z")
    assert segment_start(ts, fixed) == to_ns("2010-06-06T00:00Z")
    assert fixed.anchor_label == "fixed:2010-06-06T00:00:00+00:00"
    assert segment_start(ts, TriangleSettings()) == to_ns("2025-11-30T23:00Z")


@pytest.mark.parametrize(
    ("settings", "param", "message"),
    [
        ({"anchor": "monthly"}, "anchor", "param 'anchor' must be one of"),
        ({"anchor": "fixed"}, "anchor_at", "needs anchor_at"),
        ({"anchor": "fixed", "anchor_at": "June 6, 2010"}, "anchor_at", "must be an ISO 8601"),
        ({"warmup": -1}, "warmup", "param 'warmup' must be an integer >= 0"),
        ({"warmup": True}, "warmup", "param 'warmup' must be an integer >= 0"),
    ],
)
def test_bad_settings_are_param_errors_naming_the_param(settings, param, message):
    with pytest.raises(ParamError, match=message) as err:
        TriangleSettings(**settings)
    assert err.value.param == param


def test_the_settings_columns_are_the_stored_settings():
    row = TriangleSettings(use_1h=True).as_row()
    assert tuple(row) == SETTING_COLUMNS
    assert (row["anchor"], row["warmup"], row["use_1h"], row["use_5m"]) == (
        "weekly",
        5,
        True,
        False,
    )


# -- the bias engine, rule by rule -----------------------------------------------------------


def bias_of(rows: list[tuple[int, int, int]]) -> list[int]:
    h, low, c = (np.array(x, dtype=np.int64) for x in zip(*rows, strict=True))
    flags = np.zeros(len(rows), dtype=bool)
    flags[0] = True
    return bias_series(h, low, c, flags).tolist()


N, U, D = NEUTRAL, BULLISH, BEARISH


def test_first_bar_is_neutral_then_ath_and_atl_breaks():
    assert bias_of([(10, 5, 7), (10, 6, 9), (12, 8, 11), (11, 7, 8), (9, 3, 4)]) == [N, N, U, U, D]


def test_close_equal_to_the_high_is_no_break():
    assert bias_of([(10, 5, 7), (11, 6, 10)]) == [N, N]


def test_bull_fvg_inverts_to_bearish_when_closed_below_its_bottom():
    # bar2 low 12 > bar0 high 10: bull FVG (12, 10); bar3 closes at 9 < 10 -> Bearish
    rows = [(10, 8, 9), (13, 9, 12), (14, 12, 13), (13, 8, 9)]
    # bar3: close 9 is not below the running low 8, so only the inversion makes it Bearish
    assert bias_of(rows) == [N, U, U, D]


def test_bear_fvg_inverts_to_bullish_and_its_ifvg_is_invalidated_later():
    # bar0 low 20 > bar2 high 17: bear FVG (20, 17); bar3 closes 21 > 20 -> bull IFVG (20, 17)
    rows = [(22, 20, 21), (21, 16, 17), (17, 15, 16), (21, 16, 21), (21, 17, 18), (19, 15, 16)]
    got = bias_of(rows)
    assert got[:4] == [N, D, D, U]
    assert got[4] == U  # 18 is not below the bull IFVG bottom 17
    assert got[5] == D  # 16 < 17: bull IFVG invalidated -> Bearish


def test_later_step_wins_within_one_bar():
    """Zone geometry never lets two steps of opposite direction fire in one bar (a zone
    above the close and one below it cannot both be alive), so the order shows as: the
    bar's bias is the last step that fired, and a bar where no step fires keeps its bias."""
    rows = [(10, 9, 9), (12, 10, 11), (14, 11, 13), (15, 11, 15), (30, 5, 10)]
    # bar2: low 11 > bar0 high 10 -> bull FVG (11, 10). bar4: a wide bar closing 10: no
    # break of the prior extremes (15, 9), not below the FVG bottom: no step fires
    assert bias_of(rows)[-1] == U
    rows[-1] = (30, 5, 9)  # close 9 < FVG bottom 10: step 4 alone fires
    assert bias_of(rows)[-1] == D
    rows2 = [(10, 8, 9), (13, 9, 12), (14, 12, 13), (13, 8, 9), (16, 9, 15)]
    # bar3 inverts the bull FVG (12, 10) into a bear IFVG (step 4). bar4 closes 15: step 2
    # (above the running high 14) and step 6 (above the IFVG top 12) both fire
    assert bias_of(rows2)[-2:] == [D, U]


def test_segment_reset_clears_state():
    h = np.array([10, 12, 12, 11], dtype=np.int64)
    low = np.array([5, 6, 6, 7], dtype=np.int64)
    c = np.array([7, 11, 11, 8], dtype=np.int64)
    assert bias_series(h, low, c, np.array([1, 0, 1, 0], dtype=bool)).tolist() == [N, U, N, N]


def reference_bias(high, low, close, new_segment) -> list[int]:
    """The spec's bias, bar by bar (the literal reference), reset at each segment."""
    codes = {"Neutral": N, "Bullish": U, "Bearish": D}
    out, ref = [], RefBias()
    for i, bar in enumerate(zip(high.tolist(), low.tolist(), close.tolist(), strict=True)):
        if i == 0 or new_segment[i]:
            ref = RefBias()
        out.append(codes[ref.update(*bar)])
    return out


def test_the_zone_passes_give_the_spec_bias_on_any_bars():
    """Random walks in short and long segments, closes inside their bar and (a third of
    the series) outside it, where a zone may close in the bar that makes it: the numpy
    passes give the bar-by-bar definition's bias at every bar."""
    rng = np.random.default_rng(3)
    for trial in range(400):
        n = int(rng.integers(1, 400))
        walk = np.cumsum(rng.integers(-5, 6, n))
        high, low = walk + rng.integers(0, 6, n), walk - rng.integers(0, 6, n)
        if trial % 3:
            close = rng.integers(low, high + 1)
        else:
            close = rng.integers(low - 3, high + 4)
        new_segment = rng.random(n) < rng.choice([0.0, 0.01, 0.2])
        new_segment[0] = bool(trial % 5)  # the first bar starts a segment either way
        got = bias_series(high, low, close, new_segment).tolist()
        assert got == reference_bias(high, low, close, new_segment), trial


def test_first_below_finds_the_first_later_value_under_each_threshold():
    """Across block edges, in the first block and far beyond it, or nowhere."""
    rng = np.random.default_rng(4)
    for n in (1, 2, 63, 64, 65, 129, 1000, 5000):
        values = rng.integers(-50, 50, n)
        starts, below = rng.integers(0, n, 300), rng.integers(-60, 60, 300)
        pairs = zip(starts, below, strict=True)
        want = [next((j for j in range(a, n) if values[j] < b), n) for a, b in pairs]
        assert first_below(values, starts, below).tolist() == want, n
    far = np.zeros(10_000, dtype=np.int64)
    far[-1] = -1  # found only in the last block, past every doubling step
    assert first_below(far, np.array([0, 9_999]), np.array([0, 0])).tolist() == [9_999] * 2
    assert first_below(far, np.array([0]), np.array([-1])).tolist() == [10_000]


# -- HTF buckets -----------------------------------------------------------------------------


def test_htf_bucket_with_missing_last_minutes_is_closed_by_the_next_bar():
    cfg = TriangleSettings(warmup=0)
    t0 = to_ns("2025-12-02T10:00Z")
    # 5m buckets: [10:00, 10:05): bars 10:00..10:03 (10:04 missing); next bar 10:07
    minutes = [0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 14]
    ts = np.array([t0 + m * MIN for m in minutes], dtype=np.int64)
    closes = np.array([100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111]) * TICK
    result = run_engine(ts, closes, closes + TICK, closes - TICK, closes, cfg)
    seen = result.bias["5m"].tolist()
    # no bucket closed before 10:07: all Neutral; 10:07 closes [10:00,10:05) (first HTF bar:
    # the engine stays Neutral); 10:09 closes [10:05,10:10) -> its close 106 > 103: Bullish
    assert seen[:5] == [N] * 5
    assert seen[5] == N
    assert seen[6] == U


def test_htf_bias_is_not_seen_before_its_bucket_closes():
    cfg = TriangleSettings(warmup=0)
    frame = synthetic_bars(
        "NQ.v.0",
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2025, 12, 3, tzinfo=UTC),
        seed=2,
        quiet_fraction=0,
    )
    ts = frame.ts.to_numpy()
    result = run_engine(ts, frame.open, frame.high, frame.low, frame.close, cfg)
    changes = np.flatnonzero(np.diff(result.bias["1h"]) != 0) + 1
    # a new 1h bias appears only at a bar that closes an hour: minute 59
    assert changes.size > 0
    assert all(pd.Timestamp(ts[i], unit="ns").minute == 59 for i in changes)


# -- chunking: segments make monthly chunks equal one run -----------------------------------


def test_chunks_read_from_their_segment_start_equal_one_run():
    frame = synthetic_bars(
        "NQ.v.0", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), seed=9
    )
    cfg = TriangleSettings(htf_aligned_only=True, use_15m=True)
    ts = frame.ts.to_numpy()
    arrays = [frame[c].to_numpy() for c in ("open", "high", "low", "close")]
    whole = run_engine(ts, *arrays, cfg).events(ts)
    parts = []
    for lo, hi in (
        ("2025-01-01", "2025-02-01"),
        ("2025-02-01", "2025-03-01"),
        ("2025-03-01", "2025-04-01"),
    ):
        start = segment_start(to_ns(lo), cfg)
        sel = (ts >= start) & (ts < to_ns(hi))
        ev = run_engine(ts[sel], *(a[sel] for a in arrays), cfg).events(ts[sel])
        parts.append(ev[ev.ts >= to_ns(lo)])
    assert pd.concat(parts, ignore_index=True).equals(whole.reset_index(drop=True))
    assert len(whole) > 1000


def test_every_filter_combination_and_anchor_matches_the_reference():
    import itertools

    rng = np.random.default_rng(77)
    ts = to_ns("2025-03-07T20:00Z") + np.cumsum(rng.choice([1, 1, 1, 1, 2, 5, 90], 600)) * MIN
    close = 80_000 * TICK + np.cumsum(rng.integers(-5, 6, 600)) * TICK
    open_ = close - rng.integers(-4, 5, 600) * TICK
    high = np.maximum(open_, close) + rng.integers(0, 3, 600) * TICK
    low = np.minimum(open_, close) - rng.integers(0, 3, 600) * TICK
    bars = list(
        zip(ts.tolist(), open_.tolist(), high.tolist(), low.tolist(), close.tolist(), strict=True)
    )
    checked = 0
    for anchor in ("weekly", "session", "fixed"):
        for values in itertools.product([False, True], repeat=len(FLAGS)):
            cfg = TriangleSettings(
                anchor=anchor,
                warmup=3,
                anchor_at="2025-03-08T12:00:00Z" if anchor == "fixed" else None,
                **dict(zip(FLAGS, values, strict=True)),
            )
            assert _normalise(fast_events(bars, cfg)) == reference_triangles(
                bars, ref_settings(cfg)
            ), cfg
            checked += 1
    assert checked == 3 * 2 ** len(FLAGS)
