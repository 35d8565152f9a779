"""Bar frames for tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from market_backfill.timeutil import to_ns

MINUTE_NS = 60_000_000_000
PX = 1_000_000_000


def bar_frame(
    n: int,
    *,
    symbol: str = "GLBX.MDP3:NQ",
    start: str = "2025-12-01T00:00Z",
    price: int = 21000,
    seed: int = 1,
) -> pd.DataFrame:
    """``n`` consecutive valid 1-minute bars (int64 fixed-point prices)."""
    rng = np.random.default_rng(seed)
    ts = to_ns(start) + np.arange(n, dtype=np.int64) * MINUTE_NS
    close = price * PX + np.cumsum(rng.integers(-8, 9, n)) * (PX // 4)
    open_ = np.concatenate([[price * PX], close[:-1]])[:n]
    high = np.maximum(open_, close) + PX // 4
    low = np.minimum(open_, close) - PX // 4
    return pd.DataFrame(
        {
            "symbol": np.full(n, symbol, dtype=object),
            "ts": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1, 1000, n).astype(np.int64),
        }
    )
