"""Triangle engine speed: bars per second on one core for SYNTHETIC NQ-like bars.

    python bench/bench_triangles.py [--years 1] [--repeat 5]

Reports the median over --repeat runs of the engine alone (arrays in, events out), for
the default settings and for every HTF filter on, after one warm-up call (JIT compile).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from market_backfill.triangles.engine import TriangleSettings, run_engine
from market_backfill_devtools.sample import synthetic_bars

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "default settings": TriangleSettings(),
    "all HTF filters + sweep engulfing": TriangleSettings(
        htf_aligned_only=True,
        use_5m=True,
        use_15m=True,
        use_1h=True,
        use_4h=True,
        use_1d=True,
        require_sweep_engulfing=True,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    end = datetime(2026, 1, 1, tzinfo=UTC)
    start = end - timedelta(days=round(365.25 * args.years))
    bars = synthetic_bars("NQ.v.0", start, end, seed=1)
    arrays = [bars[c].to_numpy() for c in ("ts", "open", "high", "low", "close")]
    print(f"{len(bars):,} bars ({args.years} years), median of {args.repeat}")
    for name, cfg in CASES.items():
        run_engine(*arrays, cfg)  # compile / warm up
        times, events = [], 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = run_engine(*arrays, cfg)
            events = int(result.bull.sum() + result.bear.sum())
            times.append(time.perf_counter() - started)
        med = statistics.median(times)
        print(f"{name:36} {med:7.3f}s {len(bars) / med:12,.0f} bars/s {events:9,} triangles")


if __name__ == "__main__":
    main()
