"""The gap scan through Airflow: 15 years of one symbol in ``airflow dags test
gap_detection`` beside Airflow's floor.

    python bench/bench_gap_dag.py [--years 15] [--repeat 3] [--url postgresql://...]

Loads SYNTHETIC NQ-like bars (with holes) for --years into a fresh database (one COPY),
then runs, alternately, --repeat times each: ``floor_gaps`` (``bench/floor_dags/``, a
no-op DAG of ``gap_detection``'s shape) and ``gap_detection`` over the whole range
without repairs (detection, the gaps' upsert into ``ohlcv_gaps``, the completeness
report). Prints both medians, the difference (issue 15: at most 2 s) and the scan alone
(``gaps.scan`` in this process, as ``bench_gaps.py``).
"""

from __future__ import annotations

import argparse
import statistics
from datetime import datetime, timedelta
from pathlib import Path

from bench_gaps import load_years, scratch_database, time_scans
from dags_test import airflow_env, airflow_uri, dags_test

from market_backfill_devtools import embedded

ROOT = Path(__file__).resolve().parent.parent
FLOOR_DAGS = ROOT / "bench" / "floor_dags"


def measure(url: str, start: datetime, end: datetime, repeat: int) -> dict:
    """Median seconds of the floor and of ``gap_detection`` over ``[start, end)``, the
    runs' paired differences (each run of ``gap_detection`` less the floor's run before
    it), and the scan alone."""
    env = airflow_env(airflow_uri(url))
    conf = {
        "symbols": ["GLBX.MDP3:NQ"],
        "start": start.date().isoformat(),
        "end": (end - timedelta(days=1)).date().isoformat(),
        "repair": False,
    }
    runs: dict[str, list[float]] = {"floor": [], "gap_detection": []}
    for _ in range(repeat):  # alternating, so the machine's drift is shared
        runs["floor"].append(dags_test(env, FLOOR_DAGS, "floor_gaps", {"symbols": 1}))
        runs["gap_detection"].append(dags_test(env, ROOT / "dags", "gap_detection", conf))
    out = {k: statistics.median(v) for k, v in runs.items()}
    out["paired"] = [g - f for f, g in zip(runs["floor"], runs["gap_detection"], strict=True)]
    out["scan"] = time_scans(url, start, end, repeat)["median_s"]
    return out


def report(res: dict, bars: int, years: float) -> list[str]:
    """The markdown lines of BENCHMARKS.md's section."""
    above = res["gap_detection"] - res["floor"]
    return [
        f"`airflow dags test gap_detection` over {years:g} years of one symbol ({bars:,} "
        "stored bars; no repairs: detection, the gaps' upsert, the completeness report) "
        "beside `floor_gaps` (`bench/floor_dags/`, a no-op DAG of the same shape); each a "
        "whole CLI process, median of the runs, the two alternating.",
        "",
        "| what | seconds |",
        "|---|---:|",
        f"| **floor**: `floor_gaps` | {res['floor']:.1f} |",
        f"| `gap_detection`, {years:g} years | {res['gap_detection']:.1f} |",
        f"| above the floor (target: at most 2 s) | {above:.1f} |",
        f"| the runs' paired differences | {', '.join(f'{d:.1f}' for d in res['paired'])} |",
        f"| the scan alone, in process (`gaps.scan`) | {res['scan']:.2f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=15.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url")
    args = parser.parse_args()
    from market_backfill_devtools.bytecode import compile_package

    compile_package(ROOT)  # Airflow's processes load the package as a pip install leaves it
    admin = embedded.server_url(args.url, ROOT / ".local" / "bench-pgdata")
    with scratch_database(admin, "bench_gap_dag") as url:
        start, end, n = load_years(url, args.years)
        print("\n".join(report(measure(url, start, end, args.repeat), n, args.years)))


if __name__ == "__main__":
    main()
