"""A week of SYNTHETIC NQ-like bars with holes of known lengths, for the gap tests."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from market_backfill.symbols import Series, parse_symbol
from market_backfill.timeutil import to_ns
from market_backfill_devtools.sample import synthetic_bars

CAL = "CME Globex Equity"
MIN = 60_000_000_000
NQ = "GLBX.MDP3:NQ"
NQ_V0 = Series(parse_symbol(NQ), "v", 0)  # the registry default series of NQ


def utc(text: str) -> datetime:
    return pd.Timestamp(text, tz="UTC").to_pydatetime()


def cut_holes(expected: np.ndarray, holes: list[tuple[str, int]]) -> np.ndarray:
    """Remove ``(first minute, length)`` holes from the expected minutes."""
    drop = np.zeros(len(expected), dtype=bool)
    for first, n in holes:
        i = int(np.searchsorted(expected, to_ns(first)))
        assert expected[i] == to_ns(first)
        drop[i : i + n] = True
    return expected[~drop]


# Thanksgiving week 2025 (holiday 11-27, early close 11-28 at 12:15 CT) and more
START, END = utc("2025-11-23T00:00"), utc("2025-11-29T00:00")
HOLES = [
    ("2025-11-23T23:00", 12),  # the very first minutes of the range (Sunday open)
    ("2025-11-24T14:30", 30),
    ("2025-11-24T16:00", 5),  # exactly min_gap_minutes
    ("2025-11-24T17:00", 4),  # shorter: quiet minutes, not a gap
    ("2025-11-25T03:07", 1),
    ("2025-11-25T21:50", 10),  # runs into the daily close at 22:00 UTC
    ("2025-11-28T18:05", 10),  # the last minutes before the early close (18:15 UTC)
]


def bars_with_holes(holes):
    """(every bar of the week, the bars left when ``holes`` are cut out)."""
    full = synthetic_bars("NQ.v.0", START, END, seed=3, quiet_fraction=0)
    keep = np.isin(full.ts.to_numpy(), cut_holes(full.ts.to_numpy(), holes))
    return full, full[keep]


def reference_months(expected: np.ndarray, present: np.ndarray, gaps) -> list[dict]:
    """The scan's per-month completeness counted minute by minute (pandas, per month)."""
    month = pd.to_datetime(expected, unit="ns", utc=True).strftime("%Y-%m")
    starts = pd.to_datetime([g.start_ns for g in gaps], unit="ns", utc=True).strftime("%Y-%m")
    frame = pd.DataFrame({"month": month, "present": present})
    return [
        {
            "month": m,
            "expected": len(rows),
            "stored": int(rows.present.sum()),
            "percent": round(100.0 * rows.present.sum() / len(rows), 2),
            "gaps": int((starts == m).sum()),
        }
        for m, rows in frame.groupby("month", sort=True)
    ]
