"""Synthetic NQ-like 1-minute bars on the CME Globex calendar (SYNTHETIC, not market data).

Used for the bundled sample run, tests and benchmarks: deterministic for a seed, prices on
the 0.25 tick grid as Databento int64 fixed-point, a few quiet minutes left out (markets
really have minutes without trades).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from market_backfill.names import FIXED_SCALE, MINUTE_NS
from market_backfill.timeutil import to_ns
from market_backfill.trading_calendar import trading_minutes
from market_backfill_devtools.dbn_writer import quarterly_rolls, write_bars

TICK = FIXED_SCALE // 4  # 0.25 index points
CALENDAR = "CME Globex Equity"


def synthetic_bars(
    symbol: str,
    start: datetime,
    end: datetime,
    *,
    seed: int = 7,
    start_price: float = 21000.0,
    quiet_fraction: float = 0.01,
    calendar: str = CALENDAR,
) -> pd.DataFrame:
    """Bars for every trading minute of ``calendar`` in ``[start, end)`` except a random
    ``quiet_fraction``; ``symbol`` goes into the ``symbol`` column unchanged."""
    minutes = trading_minutes(calendar, start, end)
    rng = np.random.default_rng(seed)
    n = len(minutes)
    steps = rng.normal(0.0, 6.0, n).round().astype(np.int64) * TICK
    close = int(round(start_price * 4)) * TICK + np.cumsum(steps)
    open_ = np.concatenate([[close[0] - steps[0]], close[:-1]]) if n else close
    wick_up = rng.integers(0, 8, n) * TICK
    wick_dn = rng.integers(0, 8, n) * TICK
    high = np.maximum(open_, close) + wick_up
    low = np.minimum(open_, close) - wick_dn
    volume = rng.integers(1, 2500, n).astype(np.int64)
    keep = rng.random(n) >= quiet_fraction
    return pd.DataFrame(
        {
            "symbol": np.full(int(keep.sum()), symbol, dtype=object),
            "ts": minutes[keep],
            "open": open_[keep],
            "high": high[keep],
            "low": low[keep],
            "close": close[keep],
            "volume": volume[keep],
            "instrument_id": np.full(int(keep.sum()), 42_000_001, dtype=np.int64),
        }
    )


def bar_frame(
    n: int,
    *,
    symbol: str = "GLBX.MDP3:NQ",
    start: str = "2025-12-01T00:00Z",
    price: int = 21000,
    seed: int = 1,
) -> pd.DataFrame:
    """``n`` consecutive valid 1-minute bars from ``start``, ignoring any calendar."""
    rng = np.random.default_rng(seed)
    ts = to_ns(start) + np.arange(n, dtype=np.int64) * MINUTE_NS
    close = price * FIXED_SCALE + np.cumsum(rng.integers(-8, 9, n)) * TICK
    open_ = np.concatenate([[price * FIXED_SCALE], close[:-1]])[:n]
    high = np.maximum(open_, close) + TICK
    low = np.minimum(open_, close) - TICK
    return pd.DataFrame(
        {
            "symbol": np.full(n, symbol, dtype=object),
            "ts": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1, 1000, n).astype(np.int64),
            "instrument_id": np.full(n, 1, dtype=np.int64),
        }
    )


def write_sample(
    path: Path,
    start: datetime,
    end: datetime,
    *,
    root: str = "NQ",
    seed: int = 7,
    dataset: str = "GLBX.MDP3",
    instrument_id: int = 42_000_001,
) -> tuple[Path, int]:
    """Write a synthetic ``ROOT.v.0`` DBN file; return its path and bar count."""
    continuous = f"{root}.v.0"
    bars = synthetic_bars(continuous, start, end, seed=seed)
    rolls = quarterly_rolls(start.date(), (end - timedelta(microseconds=1)).date(), instrument_id)
    write_bars(path, bars, dataset=dataset, instruments={continuous: rolls})
    return path, len(bars)


def main() -> None:  # pragma: no cover - exercised by ./dev
    parser = argparse.ArgumentParser(description="Write SYNTHETIC NQ-like ohlcv-1m DBN data")
    parser.add_argument("path", type=Path)
    parser.add_argument("--start", default="2025-11-02")
    parser.add_argument("--end", default="2025-12-20", help="exclusive")
    parser.add_argument("--root", default="NQ")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = pd.Timestamp(args.start, tz="UTC").to_pydatetime()
    end = pd.Timestamp(args.end, tz="UTC").to_pydatetime()
    path, count = write_sample(args.path, start, end, root=args.root, seed=args.seed)
    print(f"wrote {count} SYNTHETIC bars to {path}")


if __name__ == "__main__":  # pragma: no cover
    main()
