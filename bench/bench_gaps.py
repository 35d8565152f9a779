"""Gap scan speed: seconds to scan years of one symbol against the CME calendar.

    python bench/bench_gaps.py [--years 15] [--repeat 3] [--url postgresql://...]

Loads SYNTHETIC NQ-like bars (with holes) for --years into a fresh database (one COPY),
then times ``gaps.scan`` (calendar minutes + one range query per run of up to 12
consecutive months to read + gap finding + per-month completeness), median of --repeat:
every month read (none kept from an earlier scan), and a rescan taking the months the
scan before kept.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from bench_insert import NQ_V0, copy_all

from market_backfill.db.connection import ReusingConnector
from market_backfill.db.schema import apply_schema
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill.gaps.detect import scan
from market_backfill_devtools import embedded
from market_backfill_devtools.sample import synthetic_bars

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def scratch_database(admin: str, prefix: str = "bench") -> Iterator[str]:
    """A fresh database on the benchmark server (its libpq URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield psycopg.conninfo.make_conninfo(admin, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_years(url: str, years: float, seed: int = 15) -> tuple[datetime, datetime, int]:
    """Fill ``url``'s clean table with ``years`` of SYNTHETIC bars ending 2026-01-01."""
    end = datetime(2026, 1, 1, tzinfo=UTC)
    start = end - timedelta(days=round(365.25 * years))
    bars = synthetic_bars("GLBX.MDP3:NQ", start, end, seed=seed, quiet_fraction=0.002)
    with psycopg.connect(url) as conn:
        apply_schema(conn)
        copy_all(conn, bars)
        conn.commit()
        conn.autocommit = True
        conn.execute(f"VACUUM ANALYZE {CLEAN_TABLE}")
    return start, end, len(bars)


def forget_scans(url: str) -> None:
    """Drop every kept month (``gap_scan_months``): the next scan reads all of them."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM gap_scan_months")


def time_scans(url: str, start: datetime, end: datetime, repeat: int) -> dict:
    """Median seconds of ``gaps.scan`` over ``[start, end)`` (two readers, as in a detect
    task), each committed: ``read``,
    every month read (none kept: the first scan of a history), and ``kept``, the months
    kept by the scan before (a rescan of unchanged bars: the daily run's case)."""
    times: dict[str, list[float]] = {"read": [], "kept": []}
    connect = ReusingConnector(lambda: psycopg.connect(url))  # a task's: a second reader
    with psycopg.connect(url) as conn:
        for _ in range(repeat):  # alternating
            for kind in ("read", "kept"):
                if kind == "read":
                    forget_scans(url)
                started = time.perf_counter()
                result = scan(conn, NQ_V0, "CME Globex Equity", start, end, 5, connect)
                conn.commit()
                times[kind].append(time.perf_counter() - started)
                assert (result.read == 0) == (kind == "kept"), (kind, result.read)
    connect.close()
    return {
        "expected": sum(m["expected"] for m in result.months),
        "gaps": len(result.gaps),
        "median_s": statistics.median(times["read"]),
        "kept_s": statistics.median(times["kept"]),
        "times": times,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=15.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url")
    args = parser.parse_args()
    admin = embedded.server_url(args.url, ROOT / ".local" / "bench-pgdata")
    with scratch_database(admin, "bench_gaps") as url:
        t0 = time.perf_counter()
        start, end, n = load_years(url, args.years)
        print(f"loaded {n:,} bars ({args.years} years) in {time.perf_counter() - t0:.1f}s")
        res = time_scans(url, start, end, args.repeat)
        print(
            f"scan: {res['expected']:,} expected minutes, {res['gaps']} gaps; every month "
            f"read: median {res['median_s']:.2f}s of {[round(t, 2) for t in res['times']['read']]}"
            f"; months kept by the scan before: median {res['kept_s']:.3f}s of "
            f"{[round(t, 3) for t in res['times']['kept']]}"
        )


if __name__ == "__main__":
    main()
