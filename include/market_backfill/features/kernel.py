"""The ten bar features of features.md section 2: whole-array numpy passes per series and
timeframe (no compiler: a feature task does not load numba).

Inputs are float64 arrays of one series' bars of one timeframe in ``ts`` order (prices
converted once from their exact decimals) and an int64 session key per bar; the outputs
are float64 arrays with NaN for SQL NULL. Windowed features (``sma_50``, ``vol_30``,
``volume_z_20``) sum each window afresh, left to right, by shifted-array additions (never
by running differences or reordered sums), and ``vwap_session`` sums each session from its
first bar: a bar's value depends only on its own window or session, so a chunk gives the
very bits of a single pass. The recursive ones (RMA, EMA) carry state from their seed,
computed in blocks (:func:`linear_recurrence`); a chunk starts from enough earlier bars
(:data:`~market_backfill.features.columns.WARMUP_BARS`) for that state to converge
(features.md section 3).
"""

from __future__ import annotations

import numpy as np

from market_backfill.features.columns import (
    EMA_LENGTH,
    FEATURE_COLUMNS,
    RMA_LENGTH,
    SMA_LENGTH,
    VOL_LENGTH,
    VOLUME_Z_LENGTH,
    Features,
)

BLOCK = 128
"""Length of the blocks of :func:`linear_recurrence`: the scale factors inside a block
stay below (21/19)**128 ~ 4e5 (an EMA of length 20; an RMA's are smaller), far from
overflow, and the blocks' carries are a short scalar loop."""


def window_sums(x: np.ndarray, length: int) -> np.ndarray:
    """For each ``i >= length - 1``, ``x[i - length + 1] + ... + x[i]`` added left to right
    (as a loop over the window would); ``len(x) - length + 1`` values."""
    m = len(x) - length + 1
    s = x[:m] + 0.0  # a loop's sum starts from 0.0
    for k in range(1, length):
        s += x[k : k + m]
    return s


def window_deviations(x: np.ndarray, mean: np.ndarray, length: int) -> np.ndarray:
    """For each window of :func:`window_sums`, the sum of ``(x[j] - mean)**2`` over it,
    left to right."""
    m = len(mean)
    d = x[:m] - mean
    ss = d * d
    for k in range(1, length):
        d = x[k : k + m] - mean
        ss += d * d
    return ss


def linear_recurrence(x: np.ndarray, alpha: float, y0: float) -> np.ndarray:
    """``y[k] = alpha * x[k] + (1 - alpha) * y[k - 1]`` with ``y[-1] = y0``.

    Computed per block of :data:`BLOCK` inputs in closed form: inside a block,
    ``y[j] = c**j * (sum over i <= j of alpha * x[i] * c**-i) + c**(j + 1) * y_before``
    (``c = 1 - alpha``, the sum a cumulative sum), then the blocks' last values carried
    from one block to the next. Each term is the sequential sum's term scaled by a power
    of ``c``, so the rounding is that of the sequential loop (a few units in the last
    place), not amplified by the scaling."""
    n = len(x)
    if n == 0:
        return np.empty(0)
    c = 1.0 - alpha
    blocks = -(-n // BLOCK)
    padded = np.zeros(blocks * BLOCK)
    padded[:n] = x
    j = np.arange(BLOCK)
    up = c**j
    down = (1.0 / c) ** j  # c**-j
    local = np.cumsum(padded.reshape(blocks, BLOCK) * (alpha * down), axis=1) * up
    carry_in = np.empty(blocks)  # y before each block
    step = c**BLOCK
    y = y0
    for b, last in enumerate(local[:, -1].tolist()):
        carry_in[b] = y
        y = step * y + last
    return (local + carry_in[:, None] * (up * c)).reshape(-1)[:n]


def _seeded_average(x: np.ndarray, length: int, alpha: float, out: np.ndarray) -> None:
    """``out[length - 1:]``: the mean of the first ``length`` inputs, then the recurrence
    of ``alpha`` (TradingView's ``ta.rma`` / ``ta.ema``); nothing when fewer inputs."""
    if len(x) < length:
        return
    seed = 0.0
    for value in x[:length].tolist():  # left to right, as the definition's sum
        seed += value
    seed /= length
    out[length - 1] = seed
    out[length:] = linear_recurrence(x[length:], alpha, seed)


def _session_sums(values: np.ndarray, session: np.ndarray) -> np.ndarray:
    """Cumulative sums of each column of ``values`` (bars x columns) restarting at each
    session's first bar (each session summed left to right from zero)."""
    starts = np.flatnonzero(session[1:] != session[:-1]) + 1
    out = values + 0.0  # a one-bar session: 0 + value
    bounds = np.concatenate(([0], starts, [len(values)]))
    zero = np.zeros((1, values.shape[1]))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if hi - lo > 1:
            out[lo:hi] = np.cumsum(np.concatenate((zero, values[lo:hi])), axis=0)[1:]
    return out


def compute_features(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    session: np.ndarray,
) -> Features:
    """The features of one series' bars of one timeframe, from its first bar given."""
    n = len(close)
    out = np.full((len(FEATURE_COLUMNS), n), np.nan)
    if n == 0:
        return Features(*out)
    h, lo, c, v = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close, volume))
    session = np.ascontiguousarray(session, dtype=np.int64)
    with np.errstate(all="ignore"):  # IEEE division: x / 0 is inf or NaN
        c1 = c[:-1]
        ratio = c[1:] / c1
        ret = ratio - 1.0
        out[0, 1:] = np.where(np.isfinite(ret), ret, np.nan)
        positive = (ratio > 0.0) & np.isfinite(ratio)
        out[1, 1:] = np.where(positive, np.log(np.where(positive, ratio, 1.0)), np.nan)
        tr = h - lo
        tr[1:] = np.maximum(np.maximum(tr[1:], np.abs(h[1:] - c1)), np.abs(lo[1:] - c1))
        out[2] = tr
        # atr_14: Wilder's RMA of tr, seeded with the mean of the first 14
        a_rma = 1.0 / RMA_LENGTH
        _seeded_average(tr, RMA_LENGTH, a_rma, out[3])
        # rsi_14: RMAs of the up and down changes, from the second bar on
        change = c[1:] - c1
        up_rma = np.full(n, np.nan)
        down_rma = np.full(n, np.nan)
        _seeded_average(np.where(change > 0.0, change, 0.0), RMA_LENGTH, a_rma, up_rma[1:])
        _seeded_average(np.where(change < 0.0, -change, 0.0), RMA_LENGTH, a_rma, down_rma[1:])
        rsi = 100.0 - 100.0 / (1.0 + up_rma / down_rma)
        rsi = np.where(down_rma == 0.0, np.where(up_rma > 0.0, 100.0, 50.0), rsi)
        out[4] = np.where(up_rma == 0.0, np.where(down_rma == 0.0, 50.0, 0.0), rsi)
        out[4, np.isnan(up_rma)] = np.nan
        # ema_20, seeded with the mean of the first 20 closes
        _seeded_average(c, EMA_LENGTH, 2.0 / (EMA_LENGTH + 1), out[5])
        # sma_50: each window summed afresh
        if n >= SMA_LENGTH:
            out[6, SMA_LENGTH - 1 :] = window_sums(c, SMA_LENGTH) / SMA_LENGTH
        # vol_30: sample std of the last 30 log returns
        if n > VOL_LENGTH:
            log_ret = out[1, 1:]
            mean = window_sums(log_ret, VOL_LENGTH) / VOL_LENGTH
            ss = window_deviations(log_ret, mean, VOL_LENGTH)
            out[7, VOL_LENGTH:] = np.sqrt(ss / (VOL_LENGTH - 1))
        # vwap_session: typical price x volume since the session's first bar
        pv, vv = _session_sums(np.column_stack(((h + lo + c) / 3.0 * v, v)), session).T
        out[8] = np.where(vv != 0.0, pv / vv, np.nan)
        # volume_z_20: population z-score of the volume in its 20-bar window
        if n >= VOLUME_Z_LENGTH:
            mean = window_sums(v, VOLUME_Z_LENGTH) / VOLUME_Z_LENGTH
            std = np.sqrt(window_deviations(v, mean, VOLUME_Z_LENGTH) / VOLUME_Z_LENGTH)
            z = (v[VOLUME_Z_LENGTH - 1 :] - mean) / std
            out[9, VOLUME_Z_LENGTH - 1 :] = np.where(std != 0.0, z, np.nan)
    return Features(*out)
