"""Task bodies of the ``ohlcv_reingest`` DAG (the DAG file only wires them)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from market_backfill.airflow.chunks import (
    map_groups,
    plan_monthly,
    plan_or_fail,
    run_audited,
    run_members,
    settle_estimate,
    summarize_run,
)
from market_backfill.airflow.connections import databento_credentials
from market_backfill.airflow.context import RunContext
from market_backfill.db import audit
from market_backfill.db.connection import Connector, run_transaction
from market_backfill.db.inserter import Cadence
from market_backfill.names import BATCH_SOURCE
from market_backfill.planning import (
    Chunk,
    ChunkData,
    GroupData,
    members_of,
)
from market_backfill.reingest.load import ReingestResult, ReingestSummary, load_chunk, plan_run
from market_backfill.reingest.params import ReingestParams, parse_params
from market_backfill.reingest.preflight import preflight
from market_backfill.sources import PermanentSourceError, make_source
from market_backfill.sources.cache import response_cache_dir
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.symbols import Symbol, SymbolSettings, load_settings, parse_symbol

if TYPE_CHECKING:  # the batch and file sources need pandas: imported by the tasks using them
    from market_backfill.reingest.batch import JobFiles, JobIds

log = logging.getLogger(__name__)

SUMMARIES: tuple[type, ...] = (ReingestSummary, Cadence)


def plan_chunks(run: RunContext) -> list[GroupData]:
    """Validate the params and return the groups to map over (up to ``symbols_per_task``
    symbols of one dataset and month each); with the Databento source, after the
    pre-flight (clamp, estimate, cap). ``dry_run`` maps nothing."""
    planned = plan_monthly(plan_run, run)
    parsed = parse_params(run.params)
    if parsed.source in ("databento", BATCH_SOURCE):
        planned = plan_or_fail(lambda: _preflight(planned, parsed, run))
    groups = map_groups(planned, run)
    if parsed.dry_run:
        log.info("dry run: %d chunks planned, none run", len(planned))
        return []
    return groups


def _preflight(chunks: list[ChunkData], parsed: ReingestParams, run: RunContext) -> list[ChunkData]:
    registry = run_transaction(run.connect, lambda c: load_settings(c, parsed.symbols))
    source = _databento()
    shared = parsed.window is not None or run.interval is not None
    batch = parsed.source == BATCH_SOURCE
    kept, estimate = preflight(chunks, parsed, registry, source, shared=shared, batch=batch)
    settle_estimate(run, estimate)
    return kept


def companion_symbols(
    parsed: ReingestParams, registry: Mapping[Symbol, SymbolSettings]
) -> dict[str, list[str]]:
    """Continuous symbols per dataset that share one Databento request: the run's series of
    every symbol (all chunks of a month have the same window when dates or the run's data
    interval set it; catch-up windows differ, so catch-up runs share nothing)."""
    out: dict[str, list[str]] = {}
    for sym in parsed.symbols:
        series = registry[sym].series(parsed.roll_rule, parsed.rank)
        out.setdefault(sym.dataset, []).append(series.continuous)
    return out


def _databento() -> DatabentoSource:
    """The Databento API of the ``databento`` connection (no request made)."""
    source = make_source("databento", None, credentials=databento_credentials)
    assert isinstance(source, DatabentoSource)
    return source


def batch_ready(chunks: Sequence[GroupData] | None, run: RunContext) -> JobIds | None:
    """One poke of the batch sensor: with ``databento_batch``, submit (or find) the run's
    jobs and return their ids once all are done (None: poke again later); with another
    source, nothing to wait for."""
    parsed = parse_params(run.params)
    if parsed.source != BATCH_SOURCE or not chunks:
        return {}
    from market_backfill.reingest.batch import batch_requests, submit_and_check
    from market_backfill.sources.databento_batch import DatabentoBatch

    registry = run_transaction(run.connect, lambda c: load_settings(c, parsed.symbols))
    requests = batch_requests(members_of(chunks), parsed, registry)
    return plan_or_fail(lambda: submit_and_check(DatabentoBatch(_databento()), requests))


def download_batch(jobs: JobIds | None) -> JobFiles:
    """The done jobs' files, downloaded once into the data directory (none: no jobs)."""
    if not jobs:
        return {}
    from market_backfill.reingest.batch import download_all
    from market_backfill.sources.databento_batch import DatabentoBatch

    return plan_or_fail(lambda: download_all(DatabentoBatch(_databento()), jobs))


def run_chunk(
    chunk_data: Mapping[str, Any], run: RunContext, files: JobFiles | None = None
) -> ReingestResult:
    """Load one chunk and record it in ``backfill_runs``; the return value is its XCom.
    With ``databento_batch`` the chunk reads the downloaded ``files`` of its dataset."""

    def work(chunk: Chunk, connect: Connector) -> ReingestResult:
        from market_backfill.sources.dbn_file import DbnFileSource

        parsed = parse_params(run.params)
        registry = run_transaction(connect, lambda c: load_settings(c, parsed.symbols))
        settings = registry[parse_symbol(chunk.symbol)]
        if parsed.source == BATCH_SOURCE:
            dataset = parse_symbol(chunk.symbol).dataset
            paths = (files or {}).get(dataset)
            if not paths:
                raise PermanentSourceError(f"no batch file was downloaded for {dataset}")
            return load_chunk(chunk, settings, parsed, DbnFileSource(paths), connect)
        same_window = parsed.window is not None or run.interval is not None
        source = make_source(
            parsed.source,
            parsed.dbn_path,
            credentials=databento_credentials,
            cache_dir=response_cache_dir(),
            companions=companion_symbols(parsed, registry) if same_window else {},
        )
        return load_chunk(chunk, settings, parsed, source, connect)

    return run_audited(chunk_data, work, run)


def run_group(
    group: Mapping[str, Any], run: RunContext, files: JobFiles | None = None
) -> dict[str, Any]:
    """Load every chunk of a group (:func:`~market_backfill.airflow.chunks.run_members`);
    a failed group is retried by Airflow (responses are cached, writes idempotent)."""
    return run_members(group, lambda member: run_chunk(member, run, files))


def summarize(planned: Sequence[Mapping[str, Any]] | None, run: RunContext) -> dict[str, Any]:
    """Per-chunk (symbol x month) table and totals, with the run's Databento estimate."""
    estimate = audit.read_counts(run.connect, run.dag_id, run.run_id, *audit.ESTIMATE_ROW)
    return summarize_run(
        None if planned is None else members_of(planned),
        SUMMARIES,
        run,
        extra={"estimate": estimate} if estimate else None,
    )
