"""A task process pays for what it imports: each stage's plan and summary tasks, run in a
fresh interpreter as Airflow runs them, load none of the heavy libraries only its chunk
tasks use (pandas about half a second, numba about a third, the databento client)."""

from __future__ import annotations

import pytest

from tests.support.imports import loaded_after

HEAVY = ["pandas", "numba", "databento", "pandas_market_calendars"]
STAGES = {
    "ohlcv_reingest": ("market_backfill.reingest.tasks", {"source": "dbn_file", "dbn_path": "/d"}),
    "triangle_backfill": ("market_backfill.triangles.tasks", {}),
    "feature_backfill": ("market_backfill.features.tasks", {}),
}


@pytest.mark.parametrize("dag_id", list(STAGES))
def test_plan_and_summary_tasks_load_no_chunk_library(dag_id, market_db):
    module, extra = STAGES[dag_id]
    params = {"symbols": ["GLBX.MDP3:NQ"], "start": "2025-01-01", "end": "2025-02-28", **extra}
    setup = (
        "from market_backfill.airflow.context import RunContext\n"
        f"from {module} import plan_chunks, summarize\n"
        f"run = RunContext({dag_id!r}, 'manual__imports', {params!r})\n"
        "planned = plan_chunks(run)\n"
        "assert [g['label'] for g in planned] == ['NQ 2025-01', 'NQ 2025-02'], planned\n"
        "summary = summarize([], run)\n"
        "assert isinstance(summary, dict), summary\n"
    )
    assert loaded_after(setup, HEAVY) == []
