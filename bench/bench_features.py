"""Feature stage speed: a year of 1-minute bars through all six timeframes.

    python bench/bench_features.py [--years 1] [--repeat 3] [--url postgresql://...]

Loads SYNTHETIC NQ-like bars into a fresh database (one COPY), then times, median of
--repeat: the engine alone (rollup into five timeframes and the ten features of all six,
in memory, one core), end to end (the DAG's code path: per monthly chunk the rollup
stage, then the feature stage, read from and written to PostgreSQL in 500-row committed
batches, from empty tables) and the limit of its writes (the rows it wrote, as one COPY
per table in one transaction into empty tables with the same keys).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import psycopg
from bench_gaps import NQ_V0, load_years, scratch_database
from bench_insert import task_connector

from market_backfill.features.compute import bar_features
from market_backfill.features.load import feature_chunk, rollup_chunk
from market_backfill.features.params import parse_params
from market_backfill.features.rollup import rollup
from market_backfill.features.store import read_bars
from market_backfill.names import TIMEFRAMES
from market_backfill.planning import monthly_chunks
from market_backfill.symbols import SymbolSettings
from market_backfill_devtools import embedded

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = SymbolSettings(NQ_V0.symbol, "v", 0, Decimal(1000), "CME Globex Equity")


def engine(bars: dict[str, np.ndarray]) -> int:
    """Roll up and compute every timeframe in memory; return the feature rows."""
    rows = 0
    last = int(bars["ts"][-1])
    for tf in TIMEFRAMES:
        agg = bars if tf == "1m" else rollup(bars, tf, last)
        rows += len(bar_features(agg).ret_1)
    return rows


def measure(url: str, start: datetime, end: datetime, repeat: int) -> dict:
    """Median seconds of the engine alone and of the 12-chunk end-to-end path."""
    with psycopg.connect(url) as conn:
        bars = read_bars(conn, NQ_V0, "1m", start, end)
    engine(bars)  # compile / load the cached kernel
    times = []
    for _ in range(max(repeat, 5)):
        started = time.perf_counter()
        rows = engine(bars)
        times.append(time.perf_counter() - started)
    t_engine = statistics.median(times)
    chunks = monthly_chunks(NQ_V0.symbol, start, end)
    e2e: dict[int, list[float]] = {2: [], 1: []}  # two writers a chunk (the default), one
    for _ in range(repeat):
        for writers, times in e2e.items():
            parsed = parse_params({"symbols": [NQ_V0.symbol.key], "writers": writers})
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE market_bars_ohlcv_agg, market_features_v1")
            started = time.perf_counter()
            for chunk in chunks:  # each chunk a task of its own, with its connector
                with task_connector(url) as connect:
                    rollup_chunk(chunk, SETTINGS, parsed, connect)
            for chunk in chunks:
                with task_connector(url) as connect:
                    feature_chunk(chunk, SETTINGS, parsed, connect, refresh=True)
            times.append(time.perf_counter() - started)
    return {
        "bars": len(bars["ts"]),
        "rows": rows,
        "chunks": len(chunks),
        "engine_s": t_engine,
        "end_to_end_s": statistics.median(e2e[2]),
        "end_to_end_one_writer_s": statistics.median(e2e[1]),
        "one_copy_s": one_copy(url, repeat),
        "one_copy_unkeyed_s": one_copy(url, repeat, keys=False),
    }


WRITTEN = ("market_bars_ohlcv_agg", "market_features_v1")


def one_copy(url: str, repeat: int, keys: bool = True) -> float:
    """Median seconds of the stage's writes at their limit: every row the end-to-end path
    wrote (rolled-up bars, feature rows), as one binary COPY per table into empty tables
    of the same columns and keys (without the keys: ``keys=False``), in one transaction."""
    like = "INCLUDING ALL" if keys else "INCLUDING DEFAULTS"
    with psycopg.connect(url) as conn:
        data = {}
        for table in WRITTEN:
            with conn.cursor().copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
                data[table] = b"".join(bytes(part) for part in copy)
            conn.execute(f"CREATE TABLE limit_{table} (LIKE {table} {like})")
        conn.commit()
        times = []
        for _ in range(repeat):
            for table in WRITTEN:
                conn.execute(f"TRUNCATE limit_{table}")
            conn.commit()
            started = time.perf_counter()
            for table in WRITTEN:
                with conn.cursor().copy(f"COPY limit_{table} FROM STDIN (FORMAT binary)") as copy:
                    copy.write(data[table])
            conn.commit()
            times.append(time.perf_counter() - started)
        for table in WRITTEN:
            conn.execute(f"DROP TABLE limit_{table}")
        conn.commit()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url")
    args = parser.parse_args()
    admin = embedded.server_url(args.url, ROOT / ".local" / "bench-pgdata")
    with scratch_database(admin) as url:
        start, end, n = load_years(url, args.years)
        res = measure(url, start, end, args.repeat)
        print(
            f"{res['bars']:,} bars, {res['rows']:,} feature rows over six timeframes; engine "
            f"{res['engine_s']:.3f}s ({res['bars'] / res['engine_s']:,.0f} bars/s), end to end "
            f"{res['end_to_end_s']:.2f}s ({res['bars'] / res['end_to_end_s']:,.0f} bars/s; "
            f"with one writer {res['end_to_end_one_writer_s']:.2f}s); "
            f"its writes as one COPY {res['one_copy_s']:.2f}s "
            f"({res['bars'] / res['one_copy_s']:,.0f} bars/s), without the keys "
            f"{res['one_copy_unkeyed_s']:.2f}s"
        )


if __name__ == "__main__":
    main()
