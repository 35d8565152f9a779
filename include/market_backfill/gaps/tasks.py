"""Task bodies of the ``gap_detection`` DAG (the DAG file only wires them)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence, Set
from datetime import datetime
from typing import Any

from market_backfill.airflow.chunks import (
    fail_fast,
    plan_or_fail,
    run_audited,
    settle_estimate,
    skip,
    summarize_run,
)
from market_backfill.airflow.connections import databento_credentials
from market_backfill.airflow.context import RunContext
from market_backfill.airflow.notify import send_alert
from market_backfill.alerts import data_alert, gap_severity, outages
from market_backfill.db import audit
from market_backfill.db.connection import Connection, Connector, run_transaction
from market_backfill.gaps.detect import scan
from market_backfill.gaps.params import GapParams, parse_params
from market_backfill.gaps.repair import RepairOutcome, RepairResult, repair_gap
from market_backfill.gaps.store import (
    GapRecordCounts,
    missing_gaps,
    missing_gaps_by_month,
    newest_bar,
    open_gaps,
    record_gaps,
)
from market_backfill.names import MINUTE
from market_backfill.planning import Chunk, ChunkData, monthly_chunks
from market_backfill.sources import make_source
from market_backfill.sources.cache import REPAIR_CACHE_DAYS, prune_repair_caches, repair_cache_dir
from market_backfill.sources.costs import (
    DataRequest,
    clamp,
    published_ends,
    quote_all,
)
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.summary import format_table
from market_backfill.symbols import Series, load_settings, parse_symbol, settings_of
from market_backfill.timeutil import to_ns
from market_backfill.trading_calendar import minute_count

log = logging.getLogger(__name__)

SUMMARIES: tuple[type, ...] = (GapRecordCounts, RepairOutcome)
REPORT_COLUMNS = (
    "symbol",
    "month",
    "expected",
    "stored",
    "percent",
    "open_gaps",
    "unfillable_gaps",
)


DETECT_CHUNK = "detect"
"""The ``chunk`` of a detection's row in ``backfill_runs`` (one per symbol and run)."""


class DetectResult(GapRecordCounts):
    """One detection's XCom (and its ``backfill_runs`` counts)."""

    symbol: str
    chunk: str
    start: str  # the range scanned, as planned
    end: str
    expected: int
    stored: int
    missing_minutes: int
    months: list[dict[str, Any]]  # per-month completeness (the report reuses it)
    seconds: float


def gap_params(run: RunContext) -> GapParams:
    """The run's validated params, its range following its data interval if any."""
    return parse_params(run.params, interval=run.interval)


def detection_targets(gp: GapParams) -> list[ChunkData]:
    """One detection target per symbol over the params' range."""
    start, end = gp.start.isoformat(), gp.end.isoformat()
    return [Chunk(s.key, DETECT_CHUNK, start, end).to_dict() for s in gp.symbols]


def plan_detection(run: RunContext) -> list[ChunkData]:
    """Validate params and symbols; one detection target per symbol over the range."""

    def plan() -> list[ChunkData]:
        gp = gap_params(run)
        run_transaction(run.connect, lambda c: load_settings(c, gp.symbols), what="symbols")
        log.info("gap detection %s .. %s for %s", gp.start, gp.end, [s.key for s in gp.symbols])
        return detection_targets(gp)

    return plan_or_fail(plan)


def detect(target: Mapping[str, Any], run: RunContext) -> DetectResult:
    """Scan one symbol and record its gaps (one transaction)."""

    def work(chunk: Chunk, connect: Connector) -> DetectResult:
        gp = gap_params(run)
        settings = settings_of(connect, chunk.symbol)
        series, calendar = settings.series(gp.roll_rule, gp.rank), settings.calendar

        def scan_and_record(conn: Connection) -> DetectResult:
            lo, hi = chunk.start_dt, chunk.end_dt
            found = scan(conn, series, calendar, lo, hi, gp.min_gap_minutes, connect)
            counts = record_gaps(conn, series, lo, hi, found.gaps)
            expected = sum(m["expected"] for m in found.months)
            stored = sum(m["stored"] for m in found.months)
            log.info(
                "%s: %d expected minutes, %d stored, %d gaps (%d new, %d updated), "
                "%d recorded gaps now complete; scan %.2fs (%d months read, the rest "
                "unchanged since an earlier scan or without bars)",
                chunk.symbol,
                expected,
                stored,
                counts["gaps"],
                counts["new"],
                counts["updated"],
                counts["closed"],
                found.seconds,
                found.read,
            )
            return DetectResult(
                symbol=chunk.symbol,
                chunk=chunk.label,
                start=chunk.start,
                end=chunk.end,
                **counts,
                expected=expected,
                stored=stored,
                missing_minutes=sum(g.minutes for g in found.gaps),
                months=found.months,
                seconds=found.seconds,
            )

        return run_transaction(connect, scan_and_record, what="detect")

    return run_audited(target, work, run)


def plan_repairs(run: RunContext) -> list[dict[str, Any]]:
    """Gaps to repair this run (oldest first, at most ``max_repairs``): the open ones, and
    the unfillable ones with ``retry_unfillable``."""
    gp = gap_params(run)
    if not gp.repair:
        log.info("repair is off: nothing to repair")
        return []
    pruned = prune_repair_caches()
    if pruned:
        log.info(
            "removed the repair responses of %d runs older than %d days", pruned, REPAIR_CACHE_DAYS
        )

    def wanted(conn: Connection) -> list[dict[str, Any]]:
        registry = load_settings(conn, gp.symbols)
        series = [registry[s].series(gp.roll_rule, gp.rank) for s in gp.symbols]
        return open_gaps(
            conn, series, gp.start, gp.end, gp.max_repairs, retry_unfillable=gp.retry_unfillable
        )

    gaps = run_transaction(run.connect, wanted)
    log.info(
        "%d gaps to repair (cap %d%s)",
        len(gaps),
        gp.max_repairs,
        ", unfillable ones again" if gp.retry_unfillable else "",
    )
    items = [
        {
            **g,
            **Chunk(
                g["symbol"], f"gap {g['gap_start'][:16]}", g["gap_start"], g["gap_end"]
            ).to_dict(),
            "label": g["label"],
        }
        for g in gaps
    ]
    if items and gp.reingest.get("source", "databento") == "databento":
        items = plan_or_fail(lambda: _preflight(items, gp, run))
    if gp.dry_run:
        log.info("dry run: %d repairs planned, none run", len(items))
        return []
    return items


def _preflight(items: list[dict[str, Any]], gp: GapParams, run: RunContext) -> list[dict[str, Any]]:
    """The repairs' Databento requests (one per gap), clamped and quoted; over the cap
    nothing is requested."""
    source = make_source("databento", None, credentials=databento_credentials)
    assert isinstance(source, DatabentoSource)
    kept, notes = clamp(items, published_ends(source, items))
    requests = [
        DataRequest(
            parse_symbol(g["symbol"]).dataset,
            (Series(parse_symbol(g["symbol"]), g["roll_rule"], g["rank"]).continuous,),
            datetime.fromisoformat(g["start"]),
            datetime.fromisoformat(g["end"]),
        )
        for g in kept
    ]
    estimate = quote_all(
        source, requests, max_cost_usd=gp.max_cost_usd, dry_run=gp.dry_run, clamped=notes
    )
    settle_estimate(run, estimate)
    return kept


def run_repair(gap: Mapping[str, Any], run: RunContext) -> RepairResult:
    """Repair one gap and record it in ``backfill_runs``; the return value is its XCom."""

    def work(chunk: Chunk, connect: Connector) -> RepairResult:
        gp = gap_params(run)
        source = make_source(
            gp.reingest.get("source", "databento"),
            gp.reingest.get("dbn_path"),
            credentials=databento_credentials,
            cache_dir=repair_cache_dir(run.run_id),  # a retried repair pays once
        )
        return repair_gap(gap, gp, source, connect)

    return run_audited(gap, work, run)


def announce_repairs(run: RunContext) -> int:
    """The repairs' bars, announced: returns the rows the run's repairs wrote (from the
    audit trail), so the task emits the bars Asset (triangles recompute, gap detection
    checks again); skips when they wrote nothing, so no Asset event is emitted for
    nothing (no gaps, a dry run, repairs that found no bars)."""
    rows = audit.run_rows(run.connect, run.dag_id, run.run_id)
    written = sum(
        int(r["counts"].get("rows_written") or 0) for r in rows if r["status"] == "success"
    )
    if written == 0:
        raise skip("the repairs wrote no bars: nothing to announce")
    log.info("repairs wrote %d bars: announcing the bars Asset", written)
    return written


def completeness_report(
    gp: GapParams,
    connect: Connector,
    targets: Sequence[Mapping[str, Any]],
    detected: Mapping[str, Mapping[str, Any]],
    repairs: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Symbol x month over each detection target's range: expected trading minutes, stored
    bars on them, percent, open and unfillable gaps. A month's minutes are those the
    target's detection in this run found (``detected``: its ``backfill_runs`` counts by
    symbol) unless one of ``repairs`` touched the month, which is scanned again; a target
    whose detection did not succeed (or scanned another range) is scanned whole. One
    transaction per target."""
    rows: list[dict[str, Any]] = []
    symbols = [parse_symbol(t["symbol"]) for t in targets]
    registry = run_transaction(connect, lambda c: load_settings(c, symbols), what="symbols")
    for target in targets:
        chunk = Chunk.from_dict(target)
        settings = registry[parse_symbol(chunk.symbol)]
        found = detected.get(chunk.symbol, {})
        same_range = (found.get("start"), found.get("end")) == (chunk.start, chunk.end)
        months = found.get("months") if same_range else None
        touched = {
            part.month
            for r in repairs
            if r["symbol"] == chunk.symbol
            for part in monthly_chunks(
                chunk.symbol,
                max(chunk.start_dt, datetime.fromisoformat(r["gap_start"])),
                min(chunk.end_dt, datetime.fromisoformat(r["gap_end"])),
            )
        }
        rows += run_transaction(
            connect,
            lambda c, t=chunk, s=settings, m=months, again=touched: _completeness_rows(
                c, s.series(gp.roll_rule, gp.rank), s.calendar, t, m, again, gp.min_gap_minutes
            ),
            what="completeness",
        )
    return rows


def _completeness_rows(
    conn: Connection,
    series: Series,
    calendar: str,
    target: Chunk,
    detected: Sequence[Mapping[str, Any]] | None,
    rescan: Set[str],
    min_gap_minutes: int,
) -> list[dict[str, Any]]:
    lo, hi = target.start_dt, target.end_dt
    if detected is None:
        months = scan(conn, series, calendar, lo, hi, min_gap_minutes).months
    else:
        again = {
            c.month: scan(conn, series, calendar, c.start_dt, c.end_dt, min_gap_minutes).months
            for c in monthly_chunks(series.symbol, lo, hi)
            if c.month in rescan
        }
        months = [again[m["month"]][0] if again.get(m["month"]) else m for m in detected]
        log.info("%s: completeness of %d months, %d scanned again", series, len(months), len(again))
    missing = missing_gaps_by_month(conn, series, lo, hi)
    return [
        {
            "symbol": series.symbol.key,
            **{k: v for k, v in m.items() if k != "gaps"},
            "open_gaps": missing.get(m["month"], {}).get("open", 0),
            "unfillable_gaps": missing.get(m["month"], {}).get("unfillable", 0),
        }
        for m in months
    ]


def report(
    planned_detect: Sequence[ChunkData] | None,
    planned_repairs: Sequence[Mapping[str, Any]] | None,
    run: RunContext,
) -> dict[str, Any]:
    """Completeness report into the log, the XCom and ``backfill_runs``; fails the run when
    a detection or repair task failed (a gap left open is not a failure)."""
    gp = gap_params(run)
    detected = {
        r["symbol"]: r["counts"]
        for r in audit.run_rows(run.connect, run.dag_id, run.run_id)
        if r["chunk"] == DETECT_CHUNK and r["status"] == "success"
    }
    targets = detection_targets(gp) if planned_detect is None else planned_detect
    rows = completeness_report(gp, run.connect, targets, detected, planned_repairs or [])
    log.info(
        "completeness %s .. %s:\n%s",
        f"{gp.start:%Y-%m-%d %H:%M}",
        f"{gp.end:%Y-%m-%d %H:%M}",
        format_table(rows, REPORT_COLUMNS),
    )
    gaps, stale = data_health(gp, run.connect)
    alert = data_alert(run.dag_id, run.run_id, gaps, stale)
    if alert is not None:
        send_alert(alert)
    planned = None if planned_detect is None else [*planned_detect, *(planned_repairs or [])]
    estimate = audit.read_counts(run.connect, run.dag_id, run.run_id, *audit.ESTIMATE_ROW)
    extra = {
        "completeness": rows,
        "long_gaps": gaps,
        "stale": stale,
        **({"estimate": estimate} if estimate else {}),
    }
    totals = summarize_run(planned, SUMMARIES, run, extra=extra)
    if planned_repairs is None:
        raise fail_fast("the repairs were not planned: plan_repairs failed (see its log)")
    return {**totals, "completeness": rows, "long_gaps": gaps, "stale": stale}


def data_health(
    gp: GapParams, connect: Connector
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(outages still missing in the range, consecutive gaps with no trading minute
    between them, longer than a trading day, with their severity; series whose newest bar
    lags more than ``max_lag_minutes`` trading minutes of their calendar behind the
    range's end). One read-only transaction."""

    def work(conn: Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        gaps, stale = [], []
        registry = load_settings(conn, gp.symbols)
        for sym in gp.symbols:
            settings = registry[sym]
            series = settings.series(gp.roll_rule, gp.rank)
            cal = settings.calendar
            found = missing_gaps(conn, series, gp.start, gp.end)
            between = lambda a, b, cal=cal: minute_count(cal, to_ns(a), to_ns(b))  # noqa: E731
            for outage in outages(found, between):
                severity = gap_severity(outage["minutes"])
                if severity is not None:
                    gaps.append(
                        {
                            "symbol": sym.key,
                            "gap_start": outage["start"].isoformat(),
                            "gap_end": outage["end"].isoformat(),
                            "minutes": outage["minutes"],
                            "gaps": outage["gaps"],
                            "status": outage["status"],
                            "severity": severity,
                        }
                    )
            newest = newest_bar(conn, series, gp.end)
            since = gp.start if newest is None else newest + MINUTE
            lag = minute_count(settings.calendar, to_ns(since), to_ns(gp.end))
            if lag > gp.max_lag_minutes:
                stale.append(
                    {
                        "symbol": sym.key,
                        "newest_bar": None if newest is None else newest.isoformat(),
                        "lag_minutes": lag,
                        "max_lag_minutes": gp.max_lag_minutes,
                    }
                )
        return gaps, stale

    return run_transaction(connect, work, what="data health")
