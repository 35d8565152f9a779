"""Task bodies of the ``gap_detection`` DAG (the DAG file only wires them)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from market_backfill.chunk_tasks import (
    format_table,
    load_symbol_settings,
    plan_or_fail,
    run_audited,
    summarize_run,
)
from market_backfill.db import MARKET_DB_CONN_ID, Connector, hook_connector, run_transaction
from market_backfill.gaps import (
    GapParams,
    check_symbols,
    mark_gap,
    missing_runs,
    open_gaps,
    parse_params,
    record_gaps,
    scan,
    stored_minutes,
)
from market_backfill.inserter import BatchInsertError
from market_backfill.planning import Chunk
from market_backfill.reingest import load_chunk
from market_backfill.reingest import parse_params as parse_reingest_params
from market_backfill.sources import BarSource, PermanentSourceError, SourceError
from market_backfill.trading_calendar import trading_minutes

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ("gaps", "new", "updated", "closed", "gap_status", "rows_written", "remaining")
REPORT_COLUMNS = ("symbol", "month", "expected", "stored", "percent", "open_gaps")


def _target(symbol: str, gp: GapParams, month: str) -> dict[str, str]:
    return Chunk(symbol, month, gp.start.isoformat(), gp.end.isoformat()).to_dict()


def plan_detection(
    params: Mapping[str, Any], conn_id: str = MARKET_DB_CONN_ID
) -> list[dict[str, str]]:
    """Validate params and symbols; one detection target per symbol over the range."""

    def plan() -> list[dict[str, str]]:
        gp = parse_params(params)
        check_symbols(hook_connector(conn_id), gp.symbols)
        log.info("gap detection %s .. %s for %s", gp.start, gp.end, [s.key for s in gp.symbols])
        return [_target(s.key, gp, "detect") for s in gp.symbols]

    return plan_or_fail(plan)


def detect(
    target: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    dag_id: str,
    run_id: str,
    conn_id: str = MARKET_DB_CONN_ID,
) -> dict[str, Any]:
    """Scan one symbol and record its gaps (one transaction)."""

    def work(chunk: Chunk, connect: Connector) -> dict[str, Any]:
        gp = parse_params(params)
        settings = load_symbol_settings(connect, chunk.symbol)

        def scan_and_record(conn: Any) -> dict[str, Any]:
            found = scan(
                conn,
                chunk.symbol,
                settings.calendar,
                chunk.start_dt,
                chunk.end_dt,
                gp.min_gap_minutes,
            )
            counts = record_gaps(conn, chunk.symbol, chunk.start_dt, chunk.end_dt, found.gaps)
            expected = sum(m["expected"] for m in found.months)
            stored = sum(m["stored"] for m in found.months)
            log.info(
                "%s: %d expected minutes, %d stored, %d gaps (%d new, %d updated), "
                "%d recorded gaps now complete; scan %.2fs",
                chunk.symbol,
                expected,
                stored,
                counts["gaps"],
                counts["new"],
                counts["updated"],
                counts["closed"],
                found.seconds,
            )
            return {
                "symbol": chunk.symbol,
                "chunk": chunk.label,
                **counts,
                "expected": expected,
                "stored": stored,
                "missing_minutes": sum(g.minutes for g in found.gaps),
                "seconds": found.seconds,
            }

        return run_transaction(connect, scan_and_record, what="detect")

    return run_audited(target, work, dag_id=dag_id, run_id=run_id, conn_id=conn_id)


def plan_repairs(
    params: Mapping[str, Any], conn_id: str = MARKET_DB_CONN_ID
) -> list[dict[str, Any]]:
    """Open gaps to repair this run (oldest first, at most ``max_repairs``)."""
    gp = parse_params(params)
    if not gp.repair:
        log.info("repair is off: nothing to repair")
        return []
    gaps = run_transaction(
        hook_connector(conn_id),
        lambda c: open_gaps(c, [s.key for s in gp.symbols], gp.start, gp.end, gp.max_repairs),
    )
    log.info("%d open gaps to repair (cap %d)", len(gaps), gp.max_repairs)
    return [
        {
            **g,
            **Chunk(
                g["symbol"], f"gap {g['gap_start'][:16]}", g["gap_start"], g["gap_end"]
            ).to_dict(),
            "label": g["label"],
        }
        for g in gaps
    ]


def repair_gap(
    gap: Mapping[str, Any],
    gp: GapParams,
    source: BarSource,
    connect: Connector,
    *,
    attempts: int = 3,
    backoff_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Re-ingest one gap through the reingest code and the shared inserter, retrying
    transient failures with exponential backoff; then check again and mark the gap
    ``filled`` (no missing run of ``min_gap_minutes`` left) or leave it ``open`` with the
    reason. A source without the data is an outcome, not a failure."""
    chunk = Chunk.from_dict(gap)
    settings = load_symbol_settings(connect, chunk.symbol)
    parsed = parse_reingest_params({**gp.reingest, "symbols": [chunk.symbol]})
    counts: dict[str, Any] = {}
    error = None
    for attempt in range(1, attempts + 1):
        try:
            counts = load_chunk(chunk, settings, parsed, source, connect)
            error = None
            break
        except PermanentSourceError as exc:
            run_transaction(
                connect, lambda c, e=exc: mark_gap(c, chunk.symbol, chunk.start_dt, "open", str(e))
            )
            raise
        except (SourceError, BatchInsertError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                delay = backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "%s: repair attempt %d/%d failed (%s); retrying in %.0fs",
                    gap["label"],
                    attempt,
                    attempts,
                    error,
                    delay,
                )
                sleep(delay)
    expected = trading_minutes(settings.calendar, chunk.start_dt, chunk.end_dt)
    stored = run_transaction(
        connect, lambda c: stored_minutes(c, chunk.symbol, chunk.start_dt, chunk.end_dt)
    )
    _, runs = missing_runs(expected, stored)
    remaining = int(runs[runs >= gp.min_gap_minutes].sum())
    status = "filled" if remaining == 0 else "open"
    if status == "open" and error is None:
        error = (
            f"the source has no bars for {remaining} of the gap's {gap['minutes']} "
            f"minutes (rows from source: {counts.get('rows_in', 0)})"
        )
    tries = run_transaction(
        connect,
        lambda c: mark_gap(
            c, chunk.symbol, chunk.start_dt, status, error if status == "open" else None
        ),
    )
    log.info(
        "%s: %s after %d repair attempt(s) in total; %d minutes still missing",
        gap["label"],
        status,
        tries,
        remaining,
    )
    return {
        "symbol": chunk.symbol,
        "chunk": gap["label"],
        "gap_start": gap["gap_start"],
        "minutes": gap["minutes"],
        "gap_status": status,
        "attempts": tries,
        "rows_in": counts.get("rows_in", 0),
        "rows_written": counts.get("rows_written", 0),
        "remaining": remaining,
        "error": error if status == "open" else None,
    }


def run_repair(
    gap: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    dag_id: str,
    run_id: str,
    conn_id: str = MARKET_DB_CONN_ID,
) -> dict[str, Any]:
    """Repair one gap and record it in ``backfill_runs``; the return value is its XCom."""
    from market_backfill.runtime import make_source

    def work(chunk: Chunk, connect: Connector) -> dict[str, Any]:
        gp = parse_params(params)
        source = make_source(gp.reingest.get("source", "databento"), gp.reingest.get("dbn_path"))
        return repair_gap(gap, gp, source, connect)

    return run_audited(gap, work, dag_id=dag_id, run_id=run_id, conn_id=conn_id)


def completeness_report(gp: GapParams, connect: Connector) -> list[dict[str, Any]]:
    """Symbol x month: expected trading minutes, stored bars on them, percent, open gaps."""
    rows = []
    for sym, settings in check_symbols(connect, gp.symbols).items():

        def work(conn: Any, key: str = sym.key, cal: str = settings.calendar) -> Any:
            found = scan(conn, key, cal, gp.start, gp.end, gp.min_gap_minutes)
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT to_char(date_trunc('month', gap_start AT TIME ZONE 'UTC'), "
                    "'YYYY-MM'), count(*) FROM ohlcv_gaps WHERE symbol = %s AND status = 'open' "
                    "AND gap_start >= %s AND gap_start < %s GROUP BY 1",
                    (key, gp.start, gp.end),
                )
                open_by_month = dict(cur.fetchall())
            return [
                {
                    "symbol": key,
                    **{k: v for k, v in m.items() if k != "gaps"},
                    "open_gaps": open_by_month.get(m["month"], 0),
                }
                for m in found.months
            ]

        rows += run_transaction(connect, work, what="completeness")
    return rows


def report(
    planned_detect: Any,
    planned_repairs: Any,
    params: Mapping[str, Any],
    *,
    dag_id: str,
    run_id: str,
    conn_id: str = MARKET_DB_CONN_ID,
) -> dict[str, Any]:
    """Completeness report into the log, the XCom and ``backfill_runs``; fails the run when
    a detection or repair task failed (a gap left open is not a failure)."""
    gp = parse_params(params)
    rows = completeness_report(gp, hook_connector(conn_id))
    log.info(
        "completeness %s .. %s:\n%s",
        f"{gp.start:%Y-%m-%d %H:%M}",
        f"{gp.end:%Y-%m-%d %H:%M}",
        format_table(rows, REPORT_COLUMNS),
    )
    planned = None if planned_detect is None else [*planned_detect, *(planned_repairs or [])]
    totals = summarize_run(
        planned,
        SUMMARY_COLUMNS,
        dag_id=dag_id,
        run_id=run_id,
        conn_id=conn_id,
        extra={"completeness": rows},
    )
    return {**totals, "completeness": rows}
