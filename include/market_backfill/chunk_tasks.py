"""Task plumbing shared by every chunked DAG: schema, audited chunk runs, the summary.

Each function is a transaction-like unit: running it again (task retry, cleared task)
gives the same database state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from market_backfill import audit
from market_backfill.db import (
    MARKET_DB_CONN_ID,
    Connector,
    apply_schema,
    hook_connector,
    run_transaction,
)
from market_backfill.planning import Chunk, ParamError
from market_backfill.sources import PermanentSourceError

log = logging.getLogger(__name__)

ChunkWork = Callable[[Chunk, Connector], dict[str, Any]]


def fail_fast(message: str) -> BaseException:
    """An exception that fails the task without Airflow retries (nothing a retry can fix)."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(message)


def ensure_schema(conn_id: str = MARKET_DB_CONN_ID) -> None:
    """Create the contract's tables and the symbol registry (idempotent, concurrency-safe)."""
    run_transaction(hook_connector(conn_id), apply_schema, what="schema")


def plan_or_fail(plan: Callable[[], list[dict[str, str]]]) -> list[dict[str, str]]:
    """Run a plan function; a bad param fails the task at once, naming the param."""
    try:
        return plan()
    except ParamError as exc:
        raise fail_fast(str(exc)) from None


PlanRun = Callable[..., list[dict[str, str]]]


def plan_monthly(
    plan_run: PlanRun,
    params: Mapping[str, Any],
    context: Mapping[str, Any],
    conn_id: str = MARKET_DB_CONN_ID,
) -> list[dict[str, str]]:
    """The plan task of a monthly-chunked DAG: ``plan_run`` with the run's end (from the
    context) and Airflow's ``max_map_length``; a bad param fails the task at once."""
    from market_backfill.runtime import max_map_length, run_end

    return plan_or_fail(
        lambda: plan_run(
            hook_connector(conn_id), params, run_end=run_end(context), max_chunks=max_map_length()
        )
    )


def run_audited(
    chunk_data: Mapping[str, Any],
    work: ChunkWork,
    *,
    dag_id: str,
    run_id: str,
    conn_id: str = MARKET_DB_CONN_ID,
) -> dict[str, Any]:
    """Run ``work`` for one chunk, recording it in ``backfill_runs``; return its counts.

    Errors a retry cannot fix (bad params, a refused source) fail without retries."""
    chunk = Chunk.from_dict(chunk_data)
    connect = hook_connector(conn_id)
    audit.record_start(connect, dag_id, run_id, chunk.symbol, chunk.month)
    try:
        counts = work(chunk, connect)
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
            raise fail_fast(message) from exc
        raise
    audit.record_finish(
        connect, dag_id, run_id, chunk.symbol, chunk.month, status="success", counts=counts
    )
    return counts


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over chunk counts: integers summed, per-reason dicts summed per reason."""
    totals: dict[str, Any] = {}
    for counts in rows:
        for key, value in counts.items():
            if isinstance(value, bool) or key == "seconds":
                continue
            if isinstance(value, int):
                totals[key] = totals.get(key, 0) + value
            elif isinstance(value, dict):
                merged = totals.setdefault(key, {})
                for reason, n in value.items():
                    merged[reason] = merged.get(reason, 0) + int(n)
    totals["chunks"] = len(rows)
    return totals


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A fixed-width text table for task logs (the per-chunk summary)."""
    header = list(columns)
    body = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return "-" if value is None else str(value)


def summarize_run(
    planned: Sequence[Mapping[str, Any]] | None,
    columns: Sequence[str],
    *,
    dag_id: str,
    run_id: str,
    conn_id: str = MARKET_DB_CONN_ID,
    on_success: Callable[[], None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Log the per-chunk table, store the run's totals in ``backfill_runs`` (symbol ``*``,
    chunk ``total``) and fail the task, so the run, when any planned chunk did not succeed.
    Without a plan (the plan task failed) nothing was loaded: the task fails too, since
    Airflow judges a run by its leaf tasks."""
    if planned is None:
        raise fail_fast("nothing done: the plan task did not succeed (see its log)")
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
                **counts,
                "chunk": chunk.label,
                "status": status,
                "attempts": row["attempts"] if row else 0,
            }
        )
        if status == "success":
            done.append(counts)
        else:
            problems.append(f"{chunk.label} ({status}: {(row or {}).get('error') or 'not run'})")
    totals = summarize(done)
    totals.update(chunks_planned=len(planned), chunks_failed=len(problems), **(extra or {}))
    log.info(
        "per-chunk summary:\n%s", format_table(table, ["chunk", "status", *columns, "attempts"])
    )
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
    if problems:
        raise RuntimeError(
            f"{len(problems)} of {len(planned)} chunks did not succeed: " + "; ".join(problems[:10])
        )
    if on_success is not None:
        on_success()
    return totals


def load_symbol_settings(connect: Connector, symbol_key: str) -> Any:
    """The registry row of one symbol (inside a task)."""
    from market_backfill.symbols import load_settings, parse_symbol

    symbol = parse_symbol(symbol_key)
    return run_transaction(connect, lambda c: load_settings(c, [symbol]))[symbol]
