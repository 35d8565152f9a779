"""Feature stage speed: a year of 1-minute bars through all six timeframes.

    python bench/bench_features.py [--years 1] [--repeat 3] [--url postgresql://...]

Loads SYNTHETIC NQ-like bars into a fresh database (one COPY), then times, median of
--repeat: the engine alone (rollup into five timeframes and the ten features of all six,
in memory, one core), end to end (the DAG's code path: per monthly chunk the rollup
stage, then the feature stage, read from and written to PostgreSQL in 500-row committed
batches, from empty tables), the limit of its writes (the rows it wrote, as one COPY
per table in one transaction into empty tables with the same keys) and the stage's floor
on this machine: those writes as two such COPYs at once (each half of the range on a
connection of its own) plus one read of the range's 1-minute bars (two halves
at once), with the machine's CPU seconds of each (``/proc/stat``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import psycopg
from bench_gaps import NQ_V0, load_years, scratch_database
from bench_insert import task_connector
from bench_scale import machine_busy_s

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
        "one_copy_s": one_copy(url, repeat)[0],
        "one_copy_unkeyed_s": one_copy(url, repeat, keys=False)[0],
        **floor(url, start, end, repeat),
    }


WRITTEN = ("market_bars_ohlcv_agg", "market_features_v1")


def one_copy(
    url: str, repeat: int, keys: bool = True, halves: datetime | None = None
) -> tuple[float, float]:
    """(median seconds, median machine CPU seconds) of the stage's writes at their limit:
    every row the end-to-end path wrote (rolled-up bars, feature rows, in the order it
    wrote them), as one binary COPY per table into empty tables of the same columns and
    keys (without the keys: ``keys=False``), in one transaction. With ``halves``, the rows
    before that instant and the rest are written at once, each on a connection (and in a
    transaction) of its own. The connections are open before the clock starts."""
    like = "INCLUDING ALL" if keys else "INCLUDING DEFAULTS"
    parts = ["TRUE"] if halves is None else ["ts < %s", "ts >= %s"]
    with psycopg.connect(url) as conn:
        data: list[dict[str, bytes]] = []
        for where in parts:
            data.append({})
            for table in WRITTEN:
                query = f"COPY (SELECT * FROM {table} WHERE {where}) TO STDOUT (FORMAT binary)"
                with conn.cursor().copy(query, None if halves is None else (halves,)) as copy:
                    data[-1][table] = b"".join(bytes(part) for part in copy)
        for table in WRITTEN:
            conn.execute(f"CREATE TABLE limit_{table} (LIKE {table} {like})")
        conn.commit()
        writers = [psycopg.connect(url) for _ in data]
        try:

            def write(writer: psycopg.Connection, part: dict[str, bytes]) -> None:
                for table in WRITTEN:
                    copy_sql = f"COPY limit_{table} FROM STDIN (FORMAT binary)"
                    with writer.cursor().copy(copy_sql) as copy:
                        copy.write(part[table])
                writer.commit()

            def all_parts() -> None:
                with ThreadPoolExecutor(len(data)) as pool:
                    pairs = zip(writers, data, strict=True)
                    for done in [pool.submit(write, *pair) for pair in pairs]:
                        done.result()  # a failed write fails the measurement

            def truncate() -> None:
                for table in WRITTEN:
                    conn.execute(f"TRUNCATE limit_{table}")
                conn.commit()

            timed = timed_runs(all_parts, repeat, before=truncate)
        finally:
            for writer in writers:
                writer.close()
        for table in WRITTEN:
            conn.execute(f"DROP TABLE limit_{table}")
        conn.commit()
    return timed


def timed_runs(
    run: Callable[[], object], repeat: int, before: Callable[[], object] | None = None
) -> tuple[float, float]:
    """(median seconds, median machine CPU seconds) of ``repeat`` calls of ``run``, each
    after ``before`` (not timed). CPU seconds are the busy time of every core
    (``/proc/stat``, counted in ticks of 10 ms: figures of a second or so are good to a
    few percent)."""
    times, cpus = [], []
    for _ in range(repeat):
        if before is not None:
            before()
        cpu, started = machine_busy_s(), time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
        cpus.append(machine_busy_s() - cpu)
    return statistics.median(times), statistics.median(cpus)


def floor(url: str, start: datetime, end: datetime, repeat: int) -> dict[str, float]:
    """The stage's floor on this machine, by parts (median seconds and machine CPU
    seconds of each): the writes of the end-to-end path as two COPYs at once (each half
    of ``[start, end)`` on a connection of its own), and one read of the range's 1-minute
    bars as the stages read them (two halves at once, in a transaction rolled back)."""
    two_s, two_cpu = one_copy(url, repeat, halves=start + (end - start) / 2)
    with task_connector(url) as connect:
        conn = connect()
        try:

            def read() -> None:
                read_bars(conn, NQ_V0, "1m", start, end, connect)
                conn.rollback()

            read_s, read_cpu = timed_runs(read, repeat)
        finally:
            conn.close()
    return {
        "two_copies_s": two_s,
        "two_copies_cpu_s": two_cpu,
        "read_once_s": read_s,
        "read_once_cpu_s": read_cpu,
    }


CORES = len(os.sched_getaffinity(0))
"""The cores this process may run on (the machine's, unless it is pinned)."""


def floor_s(res: dict) -> tuple[float, float]:
    """The stage's floor from :func:`floor`'s parts: (one after the other, seconds; their
    CPU seconds spread over :data:`CORES` cores without an idle moment, seconds)."""
    return (
        res["two_copies_s"] + res["read_once_s"],
        (res["two_copies_cpu_s"] + res["read_once_cpu_s"]) / CORES,
    )


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
            f"{res['one_copy_unkeyed_s']:.2f}s; as two COPYs at once "
            f"{res['two_copies_s']:.2f}s ({res['two_copies_cpu_s']:.2f} CPU-s), one read of "
            f"the bars {res['read_once_s']:.2f}s ({res['read_once_cpu_s']:.2f} CPU-s): floor "
            + " / ".join(f"{s:.2f}s ({res['bars'] / s:,.0f} bars/s)" for s in floor_s(res))
        )


if __name__ == "__main__":
    main()
