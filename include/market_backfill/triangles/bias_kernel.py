"""The compiled kernel of the legacy table's hygiene (numba): loaded only by a run on
``source_table: legacy`` (whose reads decode prices with numba too); the clean table's
runs never load a compiler. Prices are int64 fixed-point, so every comparison is exact.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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
