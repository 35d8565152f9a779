"""The gap scan through Airflow: 15 years of one symbol in ``airflow dags test
gap_detection`` beside Airflow's floor.

    python bench/bench_gap_dag.py [--years 15] [--repeat 3] [--url postgresql://...]

Loads SYNTHETIC NQ-like bars (with holes) for --years into a fresh database (one COPY),
then runs, alternately, --repeat times each: ``floor_gaps`` (``bench/floor_dags/``, a
no-op DAG of ``gap_detection``'s shape) and ``gap_detection`` over the whole range
without repairs (detection, the gaps' upsert into ``ohlcv_gaps``, the completeness
report) twice: every month read (the months earlier scans kept forgotten first), then a
rescan of the unchanged bars. Prints the medians, the differences (issue 15: at most
2 s) and the scan alone both ways (``gaps.scan`` in this process, as ``bench_gaps.py``).
"""

from __future__ import annotations

import argparse
import statistics
from datetime import datetime, timedelta
from pathlib import Path

from bench_gaps import forget_scans, load_years, scratch_database, time_scans
from dags_test import airflow_env, airflow_uri, dags_test

from market_backfill_devtools import embedded

ROOT = Path(__file__).resolve().parent.parent
FLOOR_DAGS = ROOT / "bench" / "floor_dags"


def measure(url: str, start: datetime, end: datetime, repeat: int) -> dict:
    """Median seconds of the floor and of ``gap_detection`` over ``[start, end)``, both
    with every month read (``read``: the kept months forgotten first) and rescanning
    unchanged bars (``kept``: the months the run before kept), each run's paired
    difference with the floor's run before it (``runs``: each round's three seconds), and
    the scan alone both ways."""
    env = airflow_env(airflow_uri(url))
    conf = {
        "symbols": ["GLBX.MDP3:NQ"],
        "start": start.date().isoformat(),
        "end": (end - timedelta(days=1)).date().isoformat(),
        "repair": False,
    }
    runs: dict[str, list[float]] = {"floor": [], "read": [], "kept": []}
    for _ in range(repeat):  # alternating, so the machine's drift is shared
        runs["floor"].append(dags_test(env, FLOOR_DAGS, "floor_gaps", {"symbols": 1}))
        forget_scans(url)
        runs["read"].append(dags_test(env, ROOT / "dags", "gap_detection", conf))
        runs["kept"].append(dags_test(env, ROOT / "dags", "gap_detection", conf))
    out: dict = {k: statistics.median(v) for k, v in runs.items()}
    out["runs"] = list(zip(runs["floor"], runs["read"], runs["kept"], strict=True))
    for kind in ("read", "kept"):
        out[f"paired_{kind}"] = [g - f for f, g in zip(runs["floor"], runs[kind], strict=True)]
    scans = time_scans(url, start, end, repeat)
    out["scan"], out["scan_kept"] = scans["median_s"], scans["kept_s"]
    return out


def report(res: dict, bars: int, years: float) -> list[str]:
    """The markdown lines of BENCHMARKS.md's section."""
    return [
        f"`airflow dags test gap_detection` over {years:g} years of one symbol ({bars:,} "
        "stored bars; no repairs: detection, the gaps' upsert, the completeness report) "
        "beside `floor_gaps` (`bench/floor_dags/`, a no-op DAG of the same shape); each a "
        "whole CLI process, median of the runs, the three alternating: every month read "
        "(the months kept by earlier scans forgotten first: a history's first scan), and a "
        "rescan of the unchanged bars (the months the run before kept: a daily run's case).",
        "",
        "| what | every month read | months kept |",
        "|---|---:|---:|",
        f"| **floor**: `floor_gaps` | {res['floor']:.1f} | {res['floor']:.1f} |",
        f"| `gap_detection`, {years:g} years | {res['read']:.1f} | {res['kept']:.1f} |",
        f"| above the floor (target: at most 2 s) | {res['read'] - res['floor']:.1f} | "
        f"{res['kept'] - res['floor']:.1f} |",
        "| the runs' paired differences | "
        + " | ".join(", ".join(f"{d:.1f}" for d in res[f"paired_{k}"]) for k in ("read", "kept"))
        + " |",
        f"| the scan alone, in process (`gaps.scan`) | {res['scan']:.2f} | "
        f"{res['scan_kept']:.3f} |",
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
