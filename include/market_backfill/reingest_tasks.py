"""Task bodies of the ``ohlcv_reingest`` DAG (the DAG file only wires them).

Each function is a transaction-like unit: running it again (task retry, cleared task)
gives the same database state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from market_backfill import audit
from market_backfill.db import MARKET_DB_CONN_ID, apply_schema, hook_connector, run_transaction
from market_backfill.planning import Chunk, ParamError
from market_backfill.reingest import (
    ReingestParams,
    format_table,
    load_chunk,
    parse_params,
    plan_run,
    summarize,
)
from market_backfill.sources import PermanentSourceError
from market_backfill.symbols import load_settings, parse_symbol

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = (
    "chunk",
    "status",
    "rows_in",
    "rows_valid",
    "rows_skipped",
    "rows_written",
    "batches",
    "commits",
    "retries",
    "attempts",
)


def _fail_fast(message: str) -> BaseException:
    """An exception that fails the task without Airflow retries (nothing a retry can fix)."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(message)


def ensure_schema(conn_id: str = MARKET_DB_CONN_ID) -> None:
    """Create the contract's tables and the symbol registry (idempotent, concurrency-safe)."""
    run_transaction(hook_connector(conn_id), apply_schema, what="schema")


def plan_chunks(
    params: Mapping[str, Any], context: Mapping[str, Any], conn_id: str = MARKET_DB_CONN_ID
) -> list[dict[str, str]]:
    """Validate the params and return the chunk list to map over."""
    from market_backfill.runtime import max_map_length, run_end

    try:
        return plan_run(
            hook_connector(conn_id),
            params,
            run_end=run_end(context),
            max_chunks=max_map_length(),
        )
    except ParamError as exc:
        raise _fail_fast(str(exc)) from None


def run_chunk(
    chunk_data: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    dag_id: str,
    run_id: str,
    conn_id: str = MARKET_DB_CONN_ID,
) -> dict[str, Any]:
    """Load one chunk and record it in ``backfill_runs``; the return value is its XCom."""
    from market_backfill.runtime import make_source, run_cache_dir

    chunk = Chunk.from_dict(chunk_data)
    connect = hook_connector(conn_id)
    audit.record_start(connect, dag_id, run_id, chunk.symbol, chunk.month)
    try:
        parsed = parse_params(params)
        symbol = parse_symbol(chunk.symbol)
        settings = run_transaction(connect, lambda c: load_settings(c, [symbol]))[symbol]
        source = make_source(
            parsed.source,
            parsed.dbn_path,
            cache_dir=run_cache_dir(dag_id, run_id),
            companions=companion_symbols(parsed),
        )
        counts = load_chunk(chunk, settings, parsed, source, connect)
    except Exception as exc:
        message = f"{chunk.label}: {type(exc).__name__}: {exc}"
        audit.record_finish(
            connect,
            dag_id,
            run_id,
            chunk.symbol,
            chunk.month,
            status="failed",
            counts={},
            error=message,
        )
        if isinstance(exc, (PermanentSourceError, ParamError)):
            raise _fail_fast(message) from exc
        raise
    audit.record_finish(
        connect, dag_id, run_id, chunk.symbol, chunk.month, status="success", counts=counts
    )
    return counts


def companion_symbols(parsed: ReingestParams) -> dict[str, list[str]]:
    """Continuous symbols per dataset that can share one Databento request: in date mode
    every symbol's chunk of a month has the same window (catch-up windows differ)."""
    if parsed.window is None:
        return {}
    out: dict[str, list[str]] = {}
    for sym in parsed.symbols:
        out.setdefault(sym.dataset, []).append(sym.continuous(parsed.roll_rule, parsed.rank))
    return out


def summarize_run(
    planned: Sequence[Mapping[str, Any]] | None,
    *,
    dag_id: str,
    run_id: str,
    conn_id: str = MARKET_DB_CONN_ID,
) -> dict[str, Any]:
    """Log the per-chunk table, store the run's totals in ``backfill_runs`` and fail the
    task (so the run) when any planned chunk did not succeed. Without a plan (the plan task
    failed) nothing was loaded: the task fails too, so the run is marked failed (Airflow
    judges a run by its leaf tasks)."""
    if planned is None:
        raise _fail_fast("nothing loaded: the plan task did not succeed (see its log)")
    connect = hook_connector(conn_id)
    rows = {(r["symbol"], r["chunk"]): r for r in audit.run_rows(connect, dag_id, run_id)}
    table, done, problems = [], [], []
    for item in planned:
        chunk = Chunk.from_dict(item)
        row = rows.get((chunk.symbol, chunk.month))
        status = row["status"] if row else "missing"
        counts = row["counts"] if row else {}
        table.append(
            {
                "chunk": chunk.label,
                "status": status,
                "attempts": row["attempts"] if row else 0,
                **counts,
            }
        )
        if status == "success":
            done.append(counts)
        else:
            problems.append(f"{chunk.label} ({status}: {(row or {}).get('error') or 'not run'})")
    totals = summarize(done)
    totals.update(chunks_planned=len(planned), chunks_failed=len(problems))
    log.info("per-chunk summary:\n%s", format_table(table, SUMMARY_COLUMNS))
    log.info("totals: %s", totals)
    audit.record_finish(
        connect,
        dag_id,
        run_id,
        "*",
        "total",
        status="failed" if problems else "success",
        counts=totals,
        error="; ".join(problems)[:2000] or None,
    )
    if not problems:
        from market_backfill.runtime import drop_run_cache

        drop_run_cache(dag_id, run_id)
    else:
        raise RuntimeError(
            f"{len(problems)} of {len(planned)} chunks did not succeed: " + "; ".join(problems[:10])
        )
    return totals
