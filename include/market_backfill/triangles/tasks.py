"""Task bodies of the ``triangle_backfill`` DAG (the DAG file only wires them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from market_backfill.airflow.chunks import plan_monthly, run_audited, summarize_run
from market_backfill.airflow.context import RunContext
from market_backfill.db.connection import Connector
from market_backfill.db.inserter import Cadence
from market_backfill.planning import Chunk, ChunkData
from market_backfill.summary import columns_of
from market_backfill.symbols import settings_of
from market_backfill.triangles.load import (
    TriangleResult,
    TriangleSummary,
    absorb_changes,
    plan_run,
    triangle_chunk,
)
from market_backfill.triangles.params import parse_params

SUMMARY_COLUMNS = columns_of(TriangleSummary, Cadence)


def plan_chunks(run: RunContext) -> list[ChunkData]:
    """Validate the params and return the chunk list to map over."""
    return plan_monthly(plan_run, run)


def run_chunk(chunk_data: Mapping[str, Any], run: RunContext) -> TriangleResult:
    """Compute and write one chunk's triangles; the return value is its XCom."""

    def work(chunk: Chunk, connect: Connector) -> TriangleResult:
        parsed = parse_params(run.params)
        return triangle_chunk(chunk, settings_of(connect, chunk.symbol), parsed, connect)

    return run_audited(chunk_data, work, run)


def summarize(planned: Sequence[ChunkData] | None, run: RunContext) -> dict[str, Any]:
    """Per-chunk table and totals into the log and ``backfill_runs``; a catch-up run that
    succeeded absorbs the bar changes it recomputed."""
    parsed = parse_params(run.params)
    catch_up = parsed.window is None and not parsed.legacy
    return summarize_run(
        planned,
        SUMMARY_COLUMNS,
        run,
        on_success=(lambda: absorb_changes(run.connect, parsed)) if catch_up else None,
    )
