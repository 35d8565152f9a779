"""Vectorised bar validation before any database work (clean-table ingest rules).

Each bad bar is dropped and counted under exactly one reason, checked in this order:
``UNDEF_PRICE`` (a price Databento marks undefined, or missing), ``OHLC_INTEGRITY``
(h < max(o, c), l > min(o, c) or h < l), ``PRICE_FLOOR`` (a price below the symbol's
floor), ``DUPLICATE_TS`` (a second bar of the same symbol and minute; the first good one
is kept). Bars are returned sorted by (symbol, ts), so out-of-order input is repaired.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from market_backfill.db.copy_binary import null_mask
from market_backfill.names import PRICE_COLUMNS, UNDEF_PRICE
from market_backfill.sources.dbn import Bars, bar_count

REASONS = ("UNDEF_PRICE", "OHLC_INTEGRITY", "PRICE_FLOOR", "DUPLICATE_TS")


@dataclass
class HygieneResult:
    bars: Bars
    rows_in: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def rows_valid(self) -> int:
        return bar_count(self.bars)


def _undefined(values: np.ndarray) -> np.ndarray:
    """Prices Databento marks undefined, or missing (NaN in a float column, None)."""
    return null_mask(values) | (values == UNDEF_PRICE)


def validate_bars(bars: Mapping[str, Any], price_floor_fixed: int) -> HygieneResult:
    """Return the good bars (sorted by symbol, ts; int64 prices) and the skipped counts
    by reason. ``bars`` is a bar frame or anything whose columns index by name (a
    DataFrame too); the result's columns are numpy arrays."""
    columns = {c: np.asarray(bars[c]) for c in bars}
    rows_in = len(columns["ts"])
    skipped = dict.fromkeys(REASONS, 0)
    if rows_in == 0:
        return HygieneResult(columns, 0, skipped)
    prices = {c: columns[c] for c in PRICE_COLUMNS}
    undef = np.zeros(rows_in, dtype=bool)
    for values in prices.values():
        undef |= _undefined(values)
    o, h, low, c = (np.where(undef, 0, prices[k]) for k in PRICE_COLUMNS)
    bad_ohlc = ~undef & ((h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (h < low))
    below = (
        ~undef & ~bad_ohlc & (np.minimum(np.minimum(o, h), np.minimum(low, c)) < price_floor_fixed)
    )
    good = np.flatnonzero(~(undef | bad_ohlc | below))
    skipped["UNDEF_PRICE"] = int(undef.sum())
    skipped["OHLC_INTEGRITY"] = int(bad_ohlc.sum())
    skipped["PRICE_FLOOR"] = int(below.sum())
    ts = columns["ts"][good].astype(np.int64)
    symbols = columns["symbol"][good]
    if len(symbols) and np.all(symbols == symbols[0]):  # one symbol: the usual chunk
        order = np.argsort(ts, kind="stable")
        codes = np.zeros(len(ts), dtype=np.int64)
    else:
        codes = np.unique(symbols.astype(str), return_inverse=True)[1].reshape(-1)
        order = np.lexsort((ts, codes))  # stable: the first of equal keys stays first
    ts, codes = ts[order], codes[order]
    dup = np.zeros(len(ts), dtype=bool)
    dup[1:] = (ts[1:] == ts[:-1]) & (codes[1:] == codes[:-1])
    skipped["DUPLICATE_TS"] = int(dup.sum())
    keep = good[order[~dup]]
    kept = {name: values[keep] for name, values in columns.items()}
    for col in PRICE_COLUMNS:
        kept[col] = kept[col].astype(np.int64)
    kept["ts"] = ts[~dup]  # already int64, in this order
    return HygieneResult(kept, rows_in, skipped)
