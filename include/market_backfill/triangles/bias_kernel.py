"""Compiled kernels of the triangle engine (numba): the FVG bias engine and legacy hygiene.

The bias engine follows triangle-signals.md section 3 step by step. Zones live in four
binary heaps keyed by the bound their removal test reads (bull FVG: max-heap on bottom;
bear FVG: min-heap on top; bear IFVG: min-heap on top; bull IFVG: max-heap on bottom),
so a bar costs O(log zones) instead of a scan of every open zone. Max-heaps store negated
keys. Prices are int64 fixed-point, so every comparison is exact.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from market_backfill.triangles.bias import BEARISH, BULLISH, NEUTRAL


@njit(cache=True, inline="always")
def _push(keys, vals, size, key, val):
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        vals[parent], vals[i] = vals[i], vals[parent]
        i = parent
    return size + 1


@njit(cache=True, inline="always")
def _pop(keys, vals, size):
    """Remove the root; return the new size (the caller read keys[0], vals[0] first)."""
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and keys[left + 1] < keys[left]:
            child = left + 1
        if keys[i] <= keys[child]:
            break
        keys[child], keys[i] = keys[i], keys[child]
        vals[child], vals[i] = vals[i], vals[child]
        i = child
    return size


@njit(cache=True)
def bias_series(high, low, close, new_segment):
    """Bias (0 neutral, 1 bullish, 2 bearish) after each bar; state resets where
    ``new_segment`` is true. Bars are one timeframe's bars of one symbol, in time order."""
    n = high.shape[0]
    out = np.empty(n, dtype=np.int8)
    cap = max(n, 1)
    bull_fvg_k = np.empty(cap, np.int64)  # -bottom
    bull_fvg_v = np.empty(cap, np.int64)  # top
    bear_fvg_k = np.empty(cap, np.int64)  # top
    bear_fvg_v = np.empty(cap, np.int64)  # bottom
    bear_ifvg_k = np.empty(cap, np.int64)  # top
    bull_ifvg_k = np.empty(cap, np.int64)  # -bottom
    dummy = np.empty(cap, np.int64)
    n_bull = n_bear = n_bear_i = n_bull_i = 0
    bias = NEUTRAL
    hi = lo = 0
    h1 = l1 = h2 = l2 = 0
    seen = 0  # bars seen in the segment
    for i in range(n):
        if new_segment[i]:
            n_bull = n_bear = n_bear_i = n_bull_i = 0
            bias = NEUTRAL
            seen = 0
        h = high[i]
        low_i = low[i]
        c = close[i]
        # 1-2: running extremes and their break
        if seen == 0:
            hi = h
            lo = low_i
        else:
            prev_hi = hi
            prev_lo = lo
            if h > hi:
                hi = h
            if low_i < lo:
                lo = low_i
            if c > prev_hi:
                bias = BULLISH
            elif c < prev_lo:
                bias = BEARISH
        # 3: new gaps against the bar two back
        if seen >= 2:
            if h2 < low_i:
                n_bull = _push(bull_fvg_k, bull_fvg_v, n_bull, -h2, low_i)
            if l2 > h:
                n_bear = _push(bear_fvg_k, bear_fvg_v, n_bear, l2, h)
        # 4: bull FVGs closed through their bottom become bear IFVGs
        while n_bull > 0 and -bull_fvg_k[0] > c:
            top = bull_fvg_v[0]
            n_bull = _pop(bull_fvg_k, bull_fvg_v, n_bull)
            n_bear_i = _push(bear_ifvg_k, dummy, n_bear_i, top, 0)
            bias = BEARISH
        # 5: bear FVGs closed through their top become bull IFVGs
        while n_bear > 0 and bear_fvg_k[0] < c:
            bottom = bear_fvg_v[0]
            n_bear = _pop(bear_fvg_k, bear_fvg_v, n_bear)
            n_bull_i = _push(bull_ifvg_k, dummy, n_bull_i, -bottom, 0)
            bias = BULLISH
        # 6: bear IFVGs invalidated upwards
        while n_bear_i > 0 and bear_ifvg_k[0] < c:
            n_bear_i = _pop(bear_ifvg_k, dummy, n_bear_i)
            bias = BULLISH
        # 7: bull IFVGs invalidated downwards
        while n_bull_i > 0 and -bull_ifvg_k[0] > c:
            n_bull_i = _pop(bull_ifvg_k, dummy, n_bull_i)
            bias = BEARISH
        # 8: shift the two-bar history
        h2 = h1
        l2 = l1
        h1 = h
        l1 = low_i
        seen += 1
        out[i] = bias
    return out


@njit(cache=True)
def legacy_good(
    open_,
    high,
    low,
    close,
    new_segment,
    floor,
    discontinuity,
    small_range,
    small_range_gap,
    flat_discontinuity,
):
    """Hygiene of the legacy table (triangle-signals.md section 1): reason code per bar,
    0 = good; 1 OHLC_INTEGRITY, 2 PRICE_FLOOR, 3 DISCONTINUITY, 4 SMALL_RANGE_BIG_GAP,
    5 FLAT_DISCONTINUITY. The jump tests compare with the previous GOOD bar's close in
    the same segment, so this is sequential."""
    n = high.shape[0]
    out = np.zeros(n, dtype=np.int8)
    have_prev = False
    prev_close = 0
    for i in range(n):
        if new_segment[i]:
            have_prev = False
        o = open_[i]
        h = high[i]
        lw = low[i]
        c = close[i]
        if h < max(o, c) or lw > min(o, c) or h < lw:
            out[i] = 1
            continue
        if min(min(o, h), min(lw, c)) < floor:
            out[i] = 2
            continue
        if have_prev:
            jump = abs(c - prev_close)
            if jump > discontinuity:
                out[i] = 3
                continue
            if h - lw <= small_range and jump >= small_range_gap:
                out[i] = 4
                continue
            if o == h and h == lw and lw == c and jump > flat_discontinuity:
                out[i] = 5
                continue
        have_prev = True
        prev_close = c
    return out
