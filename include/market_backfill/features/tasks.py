"""Task bodies of the ``feature_backfill`` DAG (the DAG file only wires them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from market_backfill.airflow.chunks import (
    plan_grouped,
    run_audited,
    run_members,
    skip,
    summarize_run,
)
from market_backfill.airflow.context import RunContext
from market_backfill.db.connection import Connector
from market_backfill.db.inserter import Cadence
from market_backfill.features.load import (
    FeatureResult,
    FeatureSummary,
    RollupResult,
    RollupSummary,
    absorb_changes,
    feature_chunk,
    plan_run,
    refreshes,
    rollup_chunk,
    rollup_variant,
)
from market_backfill.features.params import parse_params
from market_backfill.planning import Chunk, GroupData, members_of
from market_backfill.symbols import settings_of

SUMMARIES: tuple[type, ...] = (RollupSummary, FeatureSummary, Cadence)


def plan_chunks(run: RunContext) -> list[GroupData]:
    """Validate the params and return the groups both stages map over (up to
    ``symbols_per_task`` symbols of one dataset and month each)."""
    return plan_grouped(plan_run, run)


def rollup_label(group: Mapping[str, Any]) -> str:
    """The UI label of a group's rollup task (``NQ 2025-12 agg``, ``ES,NQ 2025-12 agg``)."""
    return rollup_variant(group)["label"]


def run_rollup(chunk_data: Mapping[str, Any], run: RunContext) -> RollupResult:
    """Roll one chunk's higher-timeframe bars up (audited as ``<month> agg``); returns
    its counts."""

    def work(chunk: Chunk, connect: Connector) -> RollupResult:
        parsed = parse_params(run.params)
        return rollup_chunk(chunk, settings_of(connect, chunk.symbol), parsed, connect)

    return run_audited(rollup_variant(chunk_data), work, run)


def run_rollup_group(group: Mapping[str, Any], run: RunContext) -> dict[str, Any]:
    """Roll up every chunk of a group, each audited on its own; the return value (summed
    counts and each member's) is the task's XCom. Skipped when only ``1m`` is asked for."""
    if not parse_params(run.params).agg_timeframes:
        raise skip("only 1m requested: nothing to roll up")
    return run_members(group, lambda member: run_rollup(member, run))


def run_features(chunk_data: Mapping[str, Any], run: RunContext) -> FeatureResult:
    """Compute and write one chunk's features (audited); returns its counts."""

    def work(chunk: Chunk, connect: Connector) -> FeatureResult:
        parsed = parse_params(run.params)
        refresh = refreshes(parsed, run.interval)
        symbol = settings_of(connect, chunk.symbol)
        return feature_chunk(chunk, symbol, parsed, connect, refresh=refresh)

    return run_audited(chunk_data, work, run)


def run_feature_group(group: Mapping[str, Any], run: RunContext) -> dict[str, Any]:
    """Compute and write the features of every chunk of a group, each audited on its
    own; the return value (summed counts and each member's) is the task's XCom."""
    return run_members(group, lambda member: run_features(member, run))


def summarize(planned: Sequence[GroupData] | None, run: RunContext) -> dict[str, Any]:
    """Per-chunk (symbol x month, both stages) table and totals into the log and
    ``backfill_runs``; a catch-up run that succeeded absorbs the bar changes it
    recomputed."""
    parsed = parse_params(run.params)
    members = None if planned is None else members_of(planned)
    if members is not None and parsed.agg_timeframes:
        members = [*map(rollup_variant, members), *members]
    catch_up = parsed.window is None and not parsed.force_recalc and run.interval is None
    return summarize_run(
        members,
        SUMMARIES,
        run,
        on_success=(lambda: absorb_changes(run.connect, parsed)) if catch_up else None,
    )
