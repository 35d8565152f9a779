"""The ten bar features of features.md section 2 by name, their window lengths, the
warm-up a chunk reads before its first bar, and the arrays they come in
(:mod:`market_backfill.features.kernel` computes the values)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

FEATURE_COLUMNS = (
    "ret_1",
    "log_ret_1",
    "tr",
    "atr_14",
    "rsi_14",
    "ema_20",
    "sma_50",
    "vol_30",
    "vwap_session",
    "volume_z_20",
)
RMA_LENGTH = 14
EMA_LENGTH = 20
SMA_LENGTH = 50
VOL_LENGTH = 30
VOLUME_Z_LENGTH = 20
WARMUP_BARS = 400
"""Bars of a timeframe read before a chunk: an RMA (alpha 1/14) forgets its start by
(13/14)**400 ~ 1.3e-13, an EMA (alpha 2/21) faster; every window is shorter."""


class Features(NamedTuple):
    """The ten feature arrays (NaN: NULL), in :data:`FEATURE_COLUMNS` order."""

    ret_1: np.ndarray
    log_ret_1: np.ndarray
    tr: np.ndarray
    atr_14: np.ndarray
    rsi_14: np.ndarray
    ema_20: np.ndarray
    sma_50: np.ndarray
    vol_30: np.ndarray
    vwap_session: np.ndarray
    volume_z_20: np.ndarray
