"""Peak memory (RSS) of one chunk's work, in a fresh process holding what an Airflow task
process holds first (Airflow's task runner, the standard Python operator, the postgres
provider's hook: about 120 MB before any of this project's code).

    python bench/chunk_memory.py reingest URL DBN_PATH 2025-06
    python bench/chunk_memory.py triangles URL - 2025-06
    python bench/chunk_memory.py features URL - 2025-06

Prints JSON: RSS after imports, peak RSS, and the chunk's counts.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not carry the parent's
    high-water mark across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    kind, url, path, month = sys.argv[1:5]
    from datetime import UTC, datetime
    from decimal import Decimal

    import airflow.providers.postgres.hooks.postgres  # noqa: F401 - a task process's imports
    import airflow.providers.standard.operators.python  # noqa: F401
    import airflow.sdk.execution_time.task_runner  # noqa: F401
    import psycopg

    from market_backfill.planning import monthly_chunks
    from market_backfill.symbols import SymbolSettings, parse_symbol

    nq = parse_symbol("GLBX.MDP3:NQ")
    settings = SymbolSettings(nq, "v", 0, Decimal(1000), "CME Globex Equity")
    year, mon = map(int, month.split("-"))
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
    chunk = monthly_chunks(nq, start, end)[0]

    def connect():
        return psycopg.connect(url)

    if kind == "reingest":
        from market_backfill.reingest.load import load_chunk
        from market_backfill.reingest.params import parse_params
        from market_backfill.sources.dbn_file import DbnFileSource

        parsed = parse_params({"symbols": [nq.key], "source": "dbn_file", "dbn_path": path})
        source = DbnFileSource(path)
        baseline = rss_mb()
        counts = load_chunk(chunk, settings, parsed, source, connect)
    elif kind == "features":  # the month's rollup task, then its feature task
        from market_backfill.features.load import feature_chunk, rollup_chunk
        from market_backfill.features.params import parse_params

        parsed = parse_params({"symbols": [nq.key]})
        baseline = rss_mb()
        counts = {
            "rollup": rollup_chunk(chunk, settings, parsed, connect),
            "features": feature_chunk(chunk, settings, parsed, connect, refresh=True),
        }
    else:
        from market_backfill.triangles.engine import run_engine  # noqa: F401 - import cost
        from market_backfill.triangles.load import triangle_chunk
        from market_backfill.triangles.params import parse_params

        parsed = parse_params({"symbols": [nq.key]})
        baseline = rss_mb()
        counts = triangle_chunk(chunk, settings, parsed, connect)
    print(
        json.dumps(
            {"baseline_mb": round(baseline, 1), "peak_mb": round(rss_mb(), 1), "counts": counts},
            default=str,
        )
    )


if __name__ == "__main__":
    main()
