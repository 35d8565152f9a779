"""The ten bar features of features.md section 2: one compiled pass (numba) per series
and timeframe.

Inputs are float64 arrays of one series' bars of one timeframe in ``ts`` order (prices
converted once from their exact decimals) and an int64 session key per bar; the outputs
are float64 arrays with NaN for SQL NULL. Windowed features (``sma_50``, ``vol_30``,
``volume_z_20``) sum their window afresh at every bar, never by running differences, so
a bar's value depends only on its window: a chunk gives the very bits of a single pass.
The recursive ones (RMA, EMA) carry state from the first input bar; a chunk starts from
enough earlier bars (:data:`~market_backfill.features.columns.WARMUP_BARS`) for that state
to converge (features.md section 3).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from market_backfill.features.columns import (
    EMA_LENGTH,
    FEATURE_COLUMNS,
    RMA_LENGTH,
    SMA_LENGTH,
    VOL_LENGTH,
    VOLUME_Z_LENGTH,
    Features,
)


@njit(cache=True, error_model="numpy")  # IEEE division: x / 0 is inf or NaN
def _features(high, low, close, volume, session, out):  # pragma: no cover - compiled
    n = close.shape[0]
    nan = np.nan
    a_rma = 1.0 / RMA_LENGTH
    a_ema = 2.0 / (EMA_LENGTH + 1)
    atr = 0.0
    up_rma = 0.0
    down_rma = 0.0
    ema = 0.0
    seed_tr = 0.0
    seed_up = 0.0
    seed_down = 0.0
    seed_close = 0.0
    pv = 0.0
    vv = 0.0
    for i in range(n):
        h = high[i]
        lo = low[i]
        c = close[i]
        v = volume[i]
        # returns and true range
        if i == 0:
            out[0, i] = nan
            out[1, i] = nan
            tr = h - lo
        else:
            c1 = close[i - 1]
            ratio = c / c1
            ret = ratio - 1.0
            out[0, i] = ret if np.isfinite(ret) else nan
            out[1, i] = np.log(ratio) if ratio > 0.0 and np.isfinite(ratio) else nan
            tr = max(h - lo, abs(h - c1), abs(lo - c1))
        out[2, i] = tr
        # atr_14: Wilder's RMA of tr, seeded with the mean of the first 14
        if i < RMA_LENGTH - 1:
            seed_tr += tr
            out[3, i] = nan
        elif i == RMA_LENGTH - 1:
            seed_tr += tr
            atr = seed_tr / RMA_LENGTH
            out[3, i] = atr
        else:
            atr = a_rma * tr + (1.0 - a_rma) * atr
            out[3, i] = atr
        # rsi_14: RMAs of the up and down changes, from the second bar on
        if i == 0:
            out[4, i] = nan
        else:
            change = c - close[i - 1]
            up = change if change > 0.0 else 0.0
            down = -change if change < 0.0 else 0.0
            if i <= RMA_LENGTH:
                seed_up += up
                seed_down += down
            if i == RMA_LENGTH:
                up_rma = seed_up / RMA_LENGTH
                down_rma = seed_down / RMA_LENGTH
            elif i > RMA_LENGTH:
                up_rma = a_rma * up + (1.0 - a_rma) * up_rma
                down_rma = a_rma * down + (1.0 - a_rma) * down_rma
            if i < RMA_LENGTH:
                out[4, i] = nan
            elif down_rma == 0.0:
                out[4, i] = 100.0 if up_rma > 0.0 else 50.0
            elif up_rma == 0.0:
                out[4, i] = 0.0
            else:
                out[4, i] = 100.0 - 100.0 / (1.0 + up_rma / down_rma)
        # ema_20, seeded with the mean of the first 20 closes
        if i < EMA_LENGTH - 1:
            seed_close += c
            out[5, i] = nan
        elif i == EMA_LENGTH - 1:
            seed_close += c
            ema = seed_close / EMA_LENGTH
            out[5, i] = ema
        else:
            ema = a_ema * c + (1.0 - a_ema) * ema
            out[5, i] = ema
        # sma_50: the window summed afresh
        if i < SMA_LENGTH - 1:
            out[6, i] = nan
        else:
            s = 0.0
            for j in range(i - SMA_LENGTH + 1, i + 1):
                s += close[j]
            out[6, i] = s / SMA_LENGTH
        # vol_30: sample std of the last 30 log returns
        if i < VOL_LENGTH:
            out[7, i] = nan
        else:
            s = 0.0
            for j in range(i - VOL_LENGTH + 1, i + 1):
                s += out[1, j]
            mean = s / VOL_LENGTH
            ss = 0.0
            for j in range(i - VOL_LENGTH + 1, i + 1):
                d = out[1, j] - mean
                ss += d * d
            out[7, i] = np.sqrt(ss / (VOL_LENGTH - 1))
        # vwap_session: cumulative typical price x volume since the session's first bar
        if i == 0 or session[i] != session[i - 1]:
            pv = 0.0
            vv = 0.0
        pv += (h + lo + c) / 3.0 * v
        vv += v
        out[8, i] = pv / vv if vv != 0.0 else nan
        # volume_z_20: population z-score of the volume in its 20-bar window
        if i < VOLUME_Z_LENGTH - 1:
            out[9, i] = nan
        else:
            s = 0.0
            for j in range(i - VOLUME_Z_LENGTH + 1, i + 1):
                s += volume[j]
            mean = s / VOLUME_Z_LENGTH
            ss = 0.0
            for j in range(i - VOLUME_Z_LENGTH + 1, i + 1):
                d = volume[j] - mean
                ss += d * d
            std = np.sqrt(ss / VOLUME_Z_LENGTH)
            out[9, i] = (v - mean) / std if std != 0.0 else nan


def compute_features(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    session: np.ndarray,
) -> Features:
    """The features of one series' bars of one timeframe, from its first bar given."""
    n = len(close)
    out = np.empty((len(FEATURE_COLUMNS), n), dtype=np.float64)
    if n:
        _features(
            np.ascontiguousarray(high, dtype=np.float64),
            np.ascontiguousarray(low, dtype=np.float64),
            np.ascontiguousarray(close, dtype=np.float64),
            np.ascontiguousarray(volume, dtype=np.float64),
            np.ascontiguousarray(session, dtype=np.int64),
            out,
        )
    return Features(*out)
