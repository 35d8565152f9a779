"""The chunk runner shared by every stage: schema, plan, audited chunk runs, the summary.

Each function is a transaction-like unit: running it again (task retry, cleared task)
gives the same database state. Errors a retry cannot fix (a bad param, a refused source)
fail the task at once, without Airflow retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from market_backfill.airflow.connections import MARKET_DB_CONN_ID, hook_connector
from market_backfill.airflow.context import RunContext, max_map_length, push_xcom
from market_backfill.db import audit
from market_backfill.db.connection import Connector, run_transaction
from market_backfill.db.schema import apply_schema
from market_backfill.errors import ParamError
from market_backfill.params import param_symbols_per_task
from market_backfill.planning import (
    Chunk,
    ChunkData,
    GroupData,
    PlanRequest,
    group_chunks,
    members_of,
)
from market_backfill.sources import PermanentSourceError
from market_backfill.sources.costs import Estimate, over_budget
from market_backfill.summary import columns_of, format_table, totals, zero_counts

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R", bound=Mapping[str, Any])
ChunkWork = Callable[[Chunk, Connector], R]
"""A stage's work on one chunk: returns the chunk's result (its XCom)."""


PlanRun = Callable[[PlanRequest], list[ChunkData]]
"""A stage's planner: validates params, returns the chunks to map over."""


def fail_fast(message: str) -> BaseException:
    """An exception that fails the task without Airflow retries (nothing a retry can fix)."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(message)


def skip(message: str) -> BaseException:
    """An exception that skips the task: nothing to do (a skipped task emits no Asset)."""
    from airflow.sdk.exceptions import AirflowSkipException

    return AirflowSkipException(message)


def ensure_schema(conn_id: str = MARKET_DB_CONN_ID) -> None:
    """Create the contract's tables and the symbol registry (idempotent, concurrency-safe)."""
    run_transaction(hook_connector(conn_id), apply_schema, what="schema")


def plan_or_fail(plan: Callable[[], T]) -> T:
    """Run a planning step; a bad param (naming it) or a refused source (a rejected key)
    fails the task at once."""
    try:
        return plan()
    except (ParamError, PermanentSourceError) as exc:
        raise fail_fast(str(exc)) from None


def plan_monthly(plan_run: PlanRun, run: RunContext) -> list[ChunkData]:
    """The plan task of a monthly-chunked DAG: ``plan_run`` with the run's end and data
    interval (the caller groups the chunks into mapped tasks, :func:`map_groups`, which
    checks Airflow's ``max_map_length``)."""
    request = PlanRequest(run.connect, run.params, run.run_end, interval=run.interval)
    return plan_or_fail(lambda: plan_run(request))


def map_groups(chunks: Sequence[ChunkData], run: RunContext) -> list[GroupData]:
    """The mapped tasks of a plan: up to ``symbols_per_task`` symbols of one dataset and
    month each, within Airflow's ``max_map_length`` (else the plan task fails, naming the
    param to raise)."""
    per_task = plan_or_fail(lambda: param_symbols_per_task(run.params))
    groups = plan_or_fail(lambda: group_chunks(chunks, per_task, max_groups=max_map_length()))
    log.info("%d chunks (symbol x month) in %d mapped tasks", len(chunks), len(groups))
    return groups


def plan_grouped(plan_run: PlanRun, run: RunContext) -> list[GroupData]:
    """The plan task of a monthly stage whose mapped tasks hold groups of symbols."""
    return map_groups(plan_monthly(plan_run, run), run)


def run_members(
    group: Mapping[str, Any], run_member: Callable[[ChunkData], Mapping[str, Any]]
) -> dict[str, Any]:
    """Run every member chunk of a group with ``run_member`` (each audited on its own by
    :func:`run_audited`, one after the other; one failing does not stop the others) and
    return the group's XCom: the members' summed counts, their symbols, the library's
    seconds and each member's result. A member that failed fails the task afterwards:
    without retries when every failure is final (a bad param or file, a refused key),
    else for Airflow to retry the group (each member is idempotent)."""
    from airflow.sdk.exceptions import AirflowFailException

    results: list[Mapping[str, Any]] = []
    failures: list[tuple[str, BaseException]] = []
    for member in members_of([group]):
        try:
            results.append(run_member(member))
        except Exception as exc:  # noqa: BLE001 - collected; the task fails below
            failures.append((member["label"], exc))
    if failures:
        message = "; ".join(f"{label}: {exc}" for label, exc in failures)
        if all(isinstance(exc, AirflowFailException) for _, exc in failures):
            raise fail_fast(message)
        raise RuntimeError(message)
    return {
        "chunk": group["label"],
        "start": group["start"],
        "end": group["end"],
        "symbols": [r["symbol"] for r in results],
        **totals(results),
        "seconds": round(sum(r.get("seconds", 0.0) for r in results), 3),
        "members": results,
    }


def settle_estimate(run: RunContext, estimate: Estimate) -> None:
    """Keep a run's Databento estimate (``backfill_runs`` row ``*``/``estimate``, the
    task's XCom ``estimate``) and stop the run, before any data request, when it is over
    the run's cap."""
    stop = over_budget(estimate)
    audit.record_finish(
        run.connect,
        run.dag_id,
        run.run_id,
        *audit.ESTIMATE_ROW,
        "failed" if stop else "success",
        estimate,
        str(stop) if stop else None,
    )
    push_xcom("estimate", estimate)
    if stop is not None:
        raise stop


def run_audited(chunk_data: Mapping[str, Any], work: ChunkWork[R], run: RunContext) -> R:
    """Run ``work`` for one chunk, recording it in ``backfill_runs`` (a re-run counts an
    attempt); return its result. A bad param or a refused source fails without retries;
    a refusal no chunk can escape (a rejected key, no entitlement) also stops the run: its
    later chunks fail at once without calling the source, until the summary lifts the
    stop. Any other error fails the task for Airflow to retry."""
    chunk = Chunk.from_dict(chunk_data)
    connect = run.connect
    stopped = audit.record_start(connect, run.dag_id, run.run_id, chunk.symbol, chunk.month)
    try:
        if stopped is not None:
            raise PermanentSourceError(f"not run, the run was stopped: {stopped}")
        result = work(chunk, connect)
    except Exception as exc:
        message = f"{chunk.label}: {type(exc).__name__}: {exc}"
        audit.record_finish(
            connect, run.dag_id, run.run_id, chunk.symbol, chunk.month, "failed", {}, message
        )
        if isinstance(exc, PermanentSourceError) and exc.run_wide:
            audit.record_stop(connect, run.dag_id, run.run_id, message)
        if isinstance(exc, (PermanentSourceError, ParamError)):
            raise fail_fast(message) from exc
        raise
    audit.record_finish(
        connect, run.dag_id, run.run_id, chunk.symbol, chunk.month, "success", result
    )
    return result


def summarize_run(
    planned: Sequence[Mapping[str, Any]] | None,
    summaries: Sequence[type],
    run: RunContext,
    *,
    on_success: Callable[[], None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Log the per-chunk table (the columns of the stage's ``summaries`` TypedDicts), store
    the run's totals in ``backfill_runs`` (symbol ``*``, chunk ``total``; one short
    transaction; every count of the summaries, 0 when no chunk carries it) and fail the
    task, so the run, when any planned chunk did not succeed. Without a plan (the plan
    task failed) nothing was loaded: the task fails too, since Airflow judges a run by its
    leaf tasks. Lifts the run's stop, if any, so that chunks cleared after a fix run again."""
    connect = run.connect
    audit.clear_stop(connect, run.dag_id, run.run_id)  # cleared chunks may run again
    if planned is None:
        raise fail_fast("nothing done: the plan task did not succeed (see its log)")
    rows = {(r["symbol"], r["chunk"]): r for r in audit.run_rows(connect, run.dag_id, run.run_id)}
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
    result = totals(done, zero_counts(*summaries))
    result.update(chunks_planned=len(planned), chunks_failed=len(problems), **(extra or {}))
    columns = ["chunk", "status", *columns_of(*summaries), "attempts"]
    log.info("per-chunk summary:\n%s", format_table(table, columns))
    log.info("totals: %s", result)
    audit.record_finish(
        connect,
        run.dag_id,
        run.run_id,
        "*",
        "total",
        "failed" if problems else "success",
        result,
        "; ".join(problems)[:2000] or None,
    )
    if problems:
        raise RuntimeError(
            f"{len(problems)} of {len(planned)} chunks did not succeed: " + "; ".join(problems[:10])
        )
    if on_success is not None:
        on_success()
    return result
