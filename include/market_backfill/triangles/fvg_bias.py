"""The FVG bias engine (triangle-signals.md section 3) as whole-array numpy passes: no
compiler, so a triangle task never loads numba.

The spec walks the bars one by one, but each zone's life is independent of every other
zone: a bull FVG born at bar ``i`` (the high two bars back below the bar's low) closes at
the first bar ``j >= i`` of its segment whose close is below its bottom (step 4, Bearish)
and lives on as a bear IFVG until the first bar ``k >= j`` whose close is above its top
(step 6, Bullish); a bear FVG mirrors it (steps 5 and 7). So every zone's bars are found
at once, each by a first-passage search over the closes (:func:`first_below`), and a
bar's bias is the last step that fired at it, in the spec's order (a break of the running
extremes of the segment's earlier bars (step 2), then steps 4, 5, 6, 7), carried forward
to the next bar where one fires and Neutral from each segment's start. A bar costs a few
vector operations and a search per zone a few dozen element reads; memory stays linear in
the bars (a 15-year ``fixed``-anchor segment included).
"""

from __future__ import annotations

import numpy as np

from market_backfill.triangles.bias import BEARISH, BULLISH, NEUTRAL

BLOCK = 64
"""Closes per block of the first-passage search: a query reads the rest of its block, the
blocks' minima by doubling steps, then the block it lands in."""
QUERIES_PER_PASS = 16_384
"""Searches gathered at once (each gathers two blocks: 16 MB at most)."""
_TOP = np.iinfo(np.int64).max


def first_below(values: np.ndarray, starts: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each query, the first index ``j >= starts[q]`` with ``values[j] < thresholds[q]``,
    or ``len(values)`` when there is none. ``values`` int64 below the int64 maximum."""
    n = len(values)
    out = np.full(len(starts), n, dtype=np.int64)
    if n == 0 or len(starts) == 0:
        return out
    n_blocks = -(-n // BLOCK)
    blocks = np.full(n_blocks * BLOCK, _TOP, dtype=np.int64)
    blocks[:n] = values
    blocks = blocks.reshape(n_blocks, BLOCK)
    levels = _doubling_minima(blocks.min(axis=1))
    for lo in range(0, len(starts), QUERIES_PER_PASS):
        part = slice(lo, lo + QUERIES_PER_PASS)
        out[part] = _search(blocks, levels, starts[part], thresholds[part], n)
    return out


def _doubling_minima(block_min: np.ndarray) -> list[np.ndarray]:
    """``levels[k][b]``: the minimum of blocks ``b .. b + 2**k - 1`` (the int64 maximum
    past the end), for every ``k`` up to the first power of two covering every block;
    each level padded so far that a query stepping past the last block stays inside."""
    size = 1
    while size < len(block_min):
        size *= 2
    level = np.full(4 * size, _TOP, dtype=np.int64)
    level[: len(block_min)] = block_min
    levels = [level]
    step = 1
    while step < size:
        nxt = level.copy()
        np.minimum(level[:-step], level[step:], out=nxt[:-step])
        levels.append(nxt)
        level, step = nxt, step * 2
    return levels


def _search(
    blocks: np.ndarray, levels: list[np.ndarray], starts: np.ndarray, below: np.ndarray, n: int
) -> np.ndarray:
    """:func:`first_below` for one pass of queries."""
    lane = np.arange(BLOCK)
    first_block = starts // BLOCK
    rows = blocks[first_block]
    hits = (rows < below[:, None]) & (lane >= (starts % BLOCK)[:, None])
    found = hits.any(axis=1)
    out = np.where(found, first_block * BLOCK + hits.argmax(axis=1), n)
    rest = np.flatnonzero(~found)
    if len(rest) == 0:
        return out
    # the first later block holding a close below the threshold: skip every run of
    # 2**k blocks whose minimum is not below it, from the longest runs down
    at, want = first_block[rest] + 1, below[rest]
    for k in range(len(levels) - 1, -1, -1):  # ``at`` ends below 3 * size: inside a level
        at += (levels[k][at] >= want).astype(np.int64) << k
    landed = at < len(blocks)
    last = rest[landed]
    rows = blocks[at[landed]]
    out[last] = at[landed] * BLOCK + (rows < want[landed][:, None]).argmax(axis=1)
    return out


def _running_extremes(
    high: np.ndarray, low: np.ndarray, seg_starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The highest high and lowest low of each segment's bars up to each bar."""
    run_hi, run_lo = high.copy(), low.copy()
    for a, b in zip(seg_starts, np.append(seg_starts[1:], len(high)), strict=True):
        np.maximum.accumulate(high[a:b], out=run_hi[a:b])
        np.minimum.accumulate(low[a:b], out=run_lo[a:b])
    return run_hi, run_lo


def bias_series(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, new_segment: np.ndarray
) -> np.ndarray:
    """Bias (0 neutral, 1 bullish, 2 bearish) after each bar; state resets where
    ``new_segment`` is true (and at the first bar). Bars are one timeframe's bars of one
    symbol, in time order; prices int64 (every comparison exact)."""
    n = len(high)
    if n == 0:
        return np.empty(0, dtype=np.int8)
    high, low, close = (np.ascontiguousarray(a, dtype=np.int64) for a in (high, low, close))
    starts_mask = np.asarray(new_segment, dtype=bool).copy()
    starts_mask[0] = True
    seg_starts = np.flatnonzero(starts_mask)
    seg = np.cumsum(starts_mask) - 1
    seg_end = np.append(seg_starts[1:], n)[seg]  # the bar after each bar's segment
    index = np.arange(n)
    in_seg = index - seg_starts[seg]

    event = np.full(n, -1, dtype=np.int8)  # the bias the bar's last step set (-1: none)
    # step 2: the close breaks the extremes of the segment's earlier bars
    run_hi, run_lo = _running_extremes(high, low, seg_starts)
    later = np.flatnonzero(in_seg >= 1)
    up = close[later] > run_hi[later - 1]
    down = ~up & (close[later] < run_lo[later - 1])
    event[later[up]] = BULLISH
    event[later[down]] = BEARISH

    # step 3: zones born at each bar with two earlier bars in the segment
    born = np.flatnonzero(in_seg >= 2)
    bull = born[high[born - 2] < low[born]]  # bottom: the high two back; top: the low
    bear = born[low[born - 2] > high[born]]  # top: the low two back; bottom: the high
    negated = -close
    # steps 4 and 6: bull FVGs closed below their bottom, then their IFVGs above their top
    closed = first_below(close, bull, high[bull - 2])
    ok = closed < seg_end[bull]
    bull, closed = bull[ok], closed[ok]
    invalid = first_below(negated, closed, -low[bull])
    step6 = invalid[invalid < seg_end[bull]]
    # steps 5 and 7: bear FVGs closed above their top, then their IFVGs below their bottom
    closed_bear = first_below(negated, bear, -low[bear - 2])
    ok = closed_bear < seg_end[bear]
    bear, closed_bear = bear[ok], closed_bear[ok]
    invalid = first_below(close, closed_bear, high[bear])
    step7 = invalid[invalid < seg_end[bear]]

    event[closed] = BEARISH  # later steps overwrite earlier ones of the same bar
    event[closed_bear] = BULLISH
    event[step6] = BULLISH
    event[step7] = BEARISH
    event[seg_starts] = NEUTRAL  # nothing fires at a segment's first bar
    last = np.where(event >= 0, index, 0)
    np.maximum.accumulate(last, out=last)
    return event[last]
