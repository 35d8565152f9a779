"""Vectorised bar validation before any database work (clean-table ingest rules).

Each bad bar is dropped and counted under exactly one reason, checked in this order:
``UNDEF_PRICE`` (a price Databento marks undefined, or missing), ``OHLC_INTEGRITY``
(h < max(o, c), l > min(o, c) or h < l), ``PRICE_FLOOR`` (a price below the symbol's
floor), ``DUPLICATE_TS`` (a second bar of the same symbol and minute; the first good one
is kept). Bars are returned sorted by (symbol, ts), so out-of-order input is repaired.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from market_backfill.names import PRICE_COLUMNS, UNDEF_PRICE

REASONS = ("UNDEF_PRICE", "OHLC_INTEGRITY", "PRICE_FLOOR", "DUPLICATE_TS")


@dataclass
class HygieneResult:
    bars: pd.DataFrame
    rows_in: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def rows_valid(self) -> int:
        return len(self.bars)


def validate_bars(bars: pd.DataFrame, price_floor_fixed: int) -> HygieneResult:
    """Return the good bars (sorted by symbol, ts) and the skipped counts by reason."""
    rows_in = len(bars)
    skipped = dict.fromkeys(REASONS, 0)
    if rows_in == 0:
        return HygieneResult(bars.reset_index(drop=True), 0, skipped)
    prices = {c: bars[c].to_numpy() for c in PRICE_COLUMNS}
    o, h, low, c = (prices[k] for k in PRICE_COLUMNS)
    undef = np.zeros(rows_in, dtype=bool)
    for values in prices.values():
        undef |= pd.isna(values) | (values == UNDEF_PRICE)
    bad_ohlc = ~undef & ((h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (h < low))
    below = (
        ~undef & ~bad_ohlc & (np.minimum(np.minimum(o, h), np.minimum(low, c)) < price_floor_fixed)
    )
    good = ~(undef | bad_ohlc | below)
    skipped["UNDEF_PRICE"] = int(undef.sum())
    skipped["OHLC_INTEGRITY"] = int(bad_ohlc.sum())
    skipped["PRICE_FLOOR"] = int(below.sum())
    kept = bars.loc[good].sort_values(["symbol", "ts"], kind="stable")
    dup = kept.duplicated(["symbol", "ts"], keep="first").to_numpy()
    skipped["DUPLICATE_TS"] = int(dup.sum())
    kept = kept.loc[~dup].reset_index(drop=True)
    for col in PRICE_COLUMNS:
        kept[col] = kept[col].astype(np.int64)
    return HygieneResult(kept, rows_in, skipped)
