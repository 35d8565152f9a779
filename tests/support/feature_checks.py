"""Expected features of a bar frame (one pass over everything) and the stored ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from market_backfill.features.columns import FEATURE_COLUMNS
from market_backfill.features.compute import bar_features
from market_backfill.features.rollup import rollup
from market_backfill.features.store import stored_features
from market_backfill.symbols import Series, parse_symbol
from market_backfill.timeutil import to_ns

NQ = Series(parse_symbol("GLBX.MDP3:NQ"), "v", 0)


def single_pass(frame: pd.DataFrame, tf: str) -> pd.DataFrame:
    """The features of every ``tf`` bar of a bar frame, as one pass from its first bar."""
    bars = {
        k: frame[k].to_numpy(dtype=np.int64)
        for k in ("ts", "open", "high", "low", "close", "volume")
    }
    if tf != "1m":
        bars = rollup(bars, tf, int(bars["ts"][-1]))
    return pd.DataFrame({"ts": bars["ts"], **bar_features(bars)._asdict()})


def stored(conn, tf: str, series: Series = NQ) -> pd.DataFrame:
    """Stored feature rows of ``tf`` with ``ts`` as UTC ns."""
    rows = stored_features(conn, series, tf)
    rows["ts"] = [to_ns(t) for t in rows["ts"]]
    for name in FEATURE_COLUMNS:
        rows[name] = rows[name].astype(np.float64)
    return rows


def assert_same(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    """Same bars; every value within 1e-9 relative (absolute below 1), NULLs exactly."""
    assert got["ts"].tolist() == expected["ts"].tolist()
    for name in FEATURE_COLUMNS:
        a, b = expected[name].to_numpy(), got[name].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        close = np.isnan(a) | (np.abs(a - b) <= 1e-9 * np.maximum(1.0, np.abs(a)))
        assert close.all(), (name, np.nanmax(np.abs(a - b)))
