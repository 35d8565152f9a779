"""The FVG bias states (triangle-signals.md section 3), shared by the engine and its
compiled kernel: importing them loads no compiler, so a task that plans or summarises
triangle runs does not pay for numba."""

from __future__ import annotations

NEUTRAL, BULLISH, BEARISH = 0, 1, 2
