"""Runs of consecutive minutes: sorted int64 ns minute open times <-> (first, count)."""

from __future__ import annotations

import numpy as np

from market_backfill.names import MINUTE_NS


def runs_of(minutes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, count) of each maximal run of consecutive minutes in sorted ``minutes``."""
    if len(minutes) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(minutes) != MINUTE_NS) + 1
    starts = np.concatenate([[0], breaks])
    counts = np.diff(np.concatenate([starts, [len(minutes)]]))
    return minutes[starts], counts


def minutes_of(first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Every minute of the runs ``first[i]``, ``counts[i]`` minutes long, in order."""
    total = int(counts.sum())
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(first, counts) + offsets * MINUTE_NS
