"""A task process pays for what it imports: each stage's plan and summary tasks, run in a
fresh interpreter as Airflow runs them, load none of the heavy libraries only its chunk
tasks use (pandas about half a second, numba about a third, the databento client)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.support.imports import loaded_after

HEAVY = ["pandas", "numba", "databento", "pandas_market_calendars"]
STAGES = {
    "ohlcv_reingest": ("market_backfill.reingest.tasks", {"source": "dbn_file", "dbn_path": "/d"}),
    "triangle_backfill": ("market_backfill.triangles.tasks", {}),
    "feature_backfill": ("market_backfill.features.tasks", {}),
}


def run_tasks(dag_id: str, end: str, names: str, body: str) -> list[str]:
    """The heavy modules loaded after a fresh interpreter imports ``names`` from the
    stage's task module and runs ``body`` with ``run`` (a manual run of NQ from 2025-01-01
    to ``end``) defined."""
    module, extra = STAGES[dag_id]
    params: Mapping[str, Any] = {
        "symbols": ["GLBX.MDP3:NQ"],
        "start": "2025-01-01",
        "end": end,
        **extra,
    }
    setup = (
        "from market_backfill.airflow.context import RunContext\n"
        f"from {module} import {names}\n"
        f"run = RunContext({dag_id!r}, 'manual__imports', {dict(params)!r})\n"
        f"{body}"
    )
    return loaded_after(setup, HEAVY)


@pytest.mark.parametrize("dag_id", list(STAGES))
def test_plan_and_summary_tasks_load_no_chunk_library(dag_id, market_db):
    body = (
        "planned = plan_chunks(run)\n"
        "assert [g['label'] for g in planned] == ['NQ 2025-01', 'NQ 2025-02'], planned\n"
        "summary = summarize([], run)\n"
        "assert isinstance(summary, dict), summary\n"
    )
    assert run_tasks(dag_id, "2025-02-28", "plan_chunks, summarize", body) == []


def test_the_batch_sensor_and_download_of_another_source_load_no_chunk_library(market_db):
    """``ohlcv_reingest`` pokes its batch sensor and runs its download task on every run:
    with a source other than ``databento_batch`` they have nothing to do and load neither
    the batch client nor pandas."""
    body = (
        "jobs = batch_ready(plan_chunks(run), run)\n"
        "assert jobs == {} and download_batch(jobs) == {}, jobs\n"
    )
    names = "batch_ready, download_batch, plan_chunks"
    assert run_tasks("ohlcv_reingest", "2025-01-31", names, body) == []
