"""Task bodies of the ``triangle_backfill`` DAG (the DAG file only wires them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from market_backfill.airflow.chunks import plan_grouped, run_audited, run_members, summarize_run
from market_backfill.airflow.context import RunContext
from market_backfill.db.connection import Connector
from market_backfill.db.inserter import Cadence
from market_backfill.planning import Chunk, GroupData, members_of
from market_backfill.symbols import settings_of
from market_backfill.triangles.load import (
    TriangleResult,
    TriangleSummary,
    absorb_changes,
    plan_run,
    triangle_chunk,
)
from market_backfill.triangles.params import parse_params

SUMMARIES: tuple[type, ...] = (TriangleSummary, Cadence)


def plan_chunks(run: RunContext) -> list[GroupData]:
    """Validate the params and return the groups to map over (up to ``symbols_per_task``
    symbols of one dataset and month each)."""
    return plan_grouped(plan_run, run)


def run_chunk(chunk_data: Mapping[str, Any], run: RunContext) -> TriangleResult:
    """Compute and write one chunk's triangles (audited); returns its counts."""

    def work(chunk: Chunk, connect: Connector) -> TriangleResult:
        parsed = parse_params(run.params)
        return triangle_chunk(chunk, settings_of(connect, chunk.symbol), parsed, connect)

    return run_audited(chunk_data, work, run)


def run_group(group: Mapping[str, Any], run: RunContext) -> dict[str, Any]:
    """Compute and write the triangles of every chunk of a group, each audited on its
    own; the return value (summed counts and each member's) is the task's XCom."""
    return run_members(group, lambda member: run_chunk(member, run))


def summarize(planned: Sequence[GroupData] | None, run: RunContext) -> dict[str, Any]:
    """Per-chunk (symbol x month) table and totals into the log and ``backfill_runs``; a
    catch-up run that succeeded absorbs the bar changes it recomputed."""
    parsed = parse_params(run.params)
    catch_up = parsed.window is None and not parsed.legacy
    return summarize_run(
        None if planned is None else members_of(planned),
        SUMMARIES,
        run,
        on_success=(lambda: absorb_changes(run.connect, parsed)) if catch_up else None,
    )
