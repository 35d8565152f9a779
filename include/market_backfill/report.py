"""Print a DAG run's per-chunk summary from ``backfill_runs`` (the audit trail).

``python -m market_backfill.report ohlcv_reingest`` shows the latest run; pass ``--run-id``
for another. Reads through the ``market_db`` connection, like the DAGs.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from market_backfill.airflow.connections import MARKET_DB_CONN_ID, hook_connector
from market_backfill.db.connection import Connection, run_transaction
from market_backfill.summary import columns_of, format_table

STAGE_TASKS = {
    "ohlcv_reingest": "market_backfill.reingest.tasks",
    "triangle_backfill": "market_backfill.triangles.tasks",
    "gap_detection": "market_backfill.gaps.tasks",
    "feature_backfill": "market_backfill.features.tasks",
}
"""Each DAG's task-body module; the columns of its ``SUMMARIES`` are the report's."""


def columns(dag_id: str) -> tuple[str, ...]:
    """The report's columns for ``dag_id``: the stage's summary columns between the
    chunk's identity and status and its duration."""
    module = STAGE_TASKS.get(dag_id)
    stage = columns_of(*importlib.import_module(module).SUMMARIES) if module else ()
    return ("symbol", "chunk", "status", "attempts", *stage, "seconds")


_LATEST_SQL = """
SELECT run_id FROM backfill_runs WHERE dag_id = %s
GROUP BY run_id ORDER BY max(started_at) DESC LIMIT 1
"""
_ROWS_SQL = """
SELECT symbol, chunk, status, attempts, counts, error FROM backfill_runs
WHERE dag_id = %s AND run_id = %s ORDER BY symbol = '*', symbol, chunk
"""


def run_report(
    dag_id: str, run_id: str | None = None, conn_id: str = MARKET_DB_CONN_ID
) -> tuple[str | None, list[dict[str, Any]]]:
    """(run_id, rows) of ``run_id`` or of the latest run of ``dag_id``."""

    def work(conn: Connection) -> tuple[str | None, list[dict[str, Any]]]:
        with conn.cursor() as cur:
            rid = run_id
            if rid is None:
                cur.execute(_LATEST_SQL, (dag_id,))
                found = cur.fetchone()
                rid = found[0] if found else None
            if rid is None:
                return None, []
            cur.execute(_ROWS_SQL, (dag_id, rid))
            return rid, [
                {"symbol": s, "chunk": c, "status": st, "attempts": a, **(counts or {}), "error": e}
                for s, c, st, a, counts, e in cur.fetchall()
            ]

    return run_transaction(hook_connector(conn_id), work, what="report")


def main() -> None:  # pragma: no cover - thin CLI over run_report
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dag_id")
    parser.add_argument("--run-id")
    args = parser.parse_args()
    run_id, rows = run_report(args.dag_id, args.run_id)
    if run_id is None:
        print(f"no runs of {args.dag_id} recorded yet")
        return
    print(f"{args.dag_id} run {run_id}")
    print(format_table(rows, columns(args.dag_id)))
    for row in rows:
        if row.get("error"):
            print(f"  {row['symbol']} {row['chunk']}: {row['error']}")


if __name__ == "__main__":  # pragma: no cover
    main()
