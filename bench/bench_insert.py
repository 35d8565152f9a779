"""Insert strategies side by side on a real PostgreSQL, with 500-row commits.

    python bench/bench_insert.py [--rows 200000] [--repeat 3] [--url postgresql://...]

Without --url it uses the embedded server (.local/bench-pgdata). Each strategy loads the
same SYNTHETIC bars into an empty clean-bars table; the median of --repeat runs is
reported as rows/s and as a ratio to one COPY of everything (the practical limit).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg
import psycopg2
import psycopg2.extras

from market_backfill.db.connection import ReusingConnector
from market_backfill.db.copy_binary import SIGNATURE, TRAILER, encode_rows
from market_backfill.db.inserter import BatchInserter
from market_backfill.db.schema import apply_schema
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill.names import BAR_COLUMNS
from market_backfill.reingest.load import BAR_BINARY, BAR_UPSERT, CLEAN_COLUMNS, clean_rows
from market_backfill.symbols import Series, parse_symbol
from market_backfill.timeutil import from_ns
from market_backfill_devtools import embedded
from market_backfill_devtools.sample import bar_frame

ROOT = Path(__file__).resolve().parent.parent

NQ_V0 = Series(parse_symbol("GLBX.MDP3:NQ"), "v", 0)
SEED_COLUMNS = ("symbol", "roll_rule", "rank", *BAR_COLUMNS[1:])  # the seed knew no contract
COLS = ", ".join(SEED_COLUMNS)
UPSERT_SQL = (
    f"INSERT INTO {CLEAN_TABLE} ({COLS}) VALUES %s "
    "ON CONFLICT (symbol, roll_rule, rank, ts) DO UPDATE SET "
    "open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, "
    "volume = EXCLUDED.volume, updated_at = now()"
)


@contextmanager
def task_connector(url: str) -> Iterator[ReusingConnector]:
    """The connector one chunk task gets (``RunContext.connect``): its transactions reuse
    one connection, closed when the task ends."""
    connect = ReusingConnector(lambda: psycopg.connect(url))
    try:
        yield connect
    finally:
        connect.close()


def seed_execute_values(url: str, frame) -> None:
    """The seed system: rows built with iterrows, execute_values page 500, commit per batch."""
    rows = []
    for _, r in frame.iterrows():
        rows.append(
            (
                r.symbol,
                "v",
                0,
                from_ns(r.ts),
                Decimal(int(r.open)) / 10**9,
                Decimal(int(r.high)) / 10**9,
                Decimal(int(r.low)) / 10**9,
                Decimal(int(r.close)) / 10**9,
                int(r.volume),
            )
        )
    _execute_values_batches(url, rows)


def _execute_values_batches(url: str, rows: list[tuple]) -> None:
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    for i in range(0, len(rows), 500):
        psycopg2.extras.execute_values(cur, UPSERT_SQL, rows[i : i + 500], page_size=500)
        conn.commit()
    conn.close()


def execute_values_only(url: str, frame) -> None:
    """execute_values page 500 with rows prepared without iterrows (the driver's own cost)."""
    rows = list(
        zip(
            frame.symbol.tolist(),
            ["v"] * len(frame),
            [0] * len(frame),
            [from_ns(t) for t in frame.ts.tolist()],
            *[
                [Decimal(v) / 10**9 for v in frame[c].tolist()]
                for c in ("open", "high", "low", "close")
            ],
            frame.volume.tolist(),
            strict=True,
        )
    )
    _execute_values_batches(url, rows)


def inserter(url: str, frame, writers: int = 1) -> None:
    """This project's BatchInserter (COPY fast path, autocommit, 500-row batches) over
    ``writers`` connections at once."""
    with BatchInserter(
        lambda: psycopg.connect(url),
        CLEAN_TABLE,
        CLEAN_COLUMNS,
        BAR_UPSERT,
        binary=BAR_BINARY,
        writers=writers,
    ) as ins:
        ins.insert(clean_rows(frame, NQ_V0))


def inserter_two_writers(url: str, frame) -> None:
    """The inserter over two connections at once (a reingest chunk's default)."""
    inserter(url, frame, writers=2)


def inserter_upsert(url: str, frame) -> None:
    """The inserter's upsert path (COPY into staging + INSERT ... ON CONFLICT per batch)."""
    with BatchInserter(
        lambda: psycopg.connect(url), CLEAN_TABLE, CLEAN_COLUMNS, BAR_UPSERT, binary=BAR_BINARY
    ) as ins:
        ins.upsert_mode = True
        ins.insert(clean_rows(frame, NQ_V0))


def copy_all(conn: psycopg.Connection, frame, slice_rows: int = 200_000) -> None:
    """One binary COPY of a bar frame into the clean table (in the caller's transaction),
    encoded a slice at a time."""
    rows = clean_rows(frame, NQ_V0)
    stmt = f"COPY {CLEAN_TABLE} ({', '.join(CLEAN_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.write(SIGNATURE)
        for i in range(0, len(rows["ts"]), slice_rows):
            part = {c: values[i : i + slice_rows] for c, values in rows.items()}
            encoded = encode_rows(part, CLEAN_COLUMNS, BAR_BINARY)
            copy.write(encoded.data.tobytes())
        copy.write(TRAILER)


def one_copy(url: str, frame) -> None:
    """One binary COPY of every row in one transaction: the practical limit, no 500-row
    commits."""
    with psycopg.connect(url) as conn:
        copy_all(conn, frame)


TWO_WRITERS = "inserter (COPY per 500, two writers: reingest's default)"
STRATEGIES: dict[str, Callable] = {
    "seed: iterrows + execute_values": seed_execute_values,
    "execute_values (no iterrows)": execute_values_only,
    "inserter, upsert path": inserter_upsert,
    "inserter (COPY per 500, one writer)": inserter,
    TWO_WRITERS: inserter_two_writers,
    "one COPY, one transaction": one_copy,
}


def measure(url: str, frame, repeat: int) -> dict[str, float]:
    """Median seconds of each strategy writing ``frame`` into an empty table, over
    ``repeat`` rounds that run every strategy once in turn (so that the ratios share the
    machine's drift)."""
    times: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    for _ in range(repeat):
        for name, fn in STRATEGIES.items():
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"TRUNCATE {CLEAN_TABLE}")
            started = time.perf_counter()
            fn(url, frame)
            times[name].append(time.perf_counter() - started)
            with psycopg.connect(url) as conn:
                assert conn.execute(f"SELECT count(*) FROM {CLEAN_TABLE}").fetchone()[0] == len(
                    frame
                )
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url")
    args = parser.parse_args()
    url = embedded.server_url(args.url, ROOT / ".local" / "bench-pgdata")
    with psycopg.connect(url) as conn:
        apply_schema(conn)
    frame = bar_frame(args.rows)
    results = measure(url, frame, args.repeat)
    limit = len(frame) / results["one COPY, one transaction"]
    print(f"{args.rows} rows, median of {args.repeat}, server {url.split('@')[-1]}")
    print(f"{'strategy':36} {'seconds':>8} {'rows/s':>10} {'x one COPY':>10}")
    for name, seconds in results.items():
        rate = len(frame) / seconds
        print(f"{name:36} {seconds:8.2f} {rate:10,.0f} {rate / limit:10.2f}")


if __name__ == "__main__":
    main()
