"""Repairing one gap: re-ingest it through the reingest stage, check it, record the outcome."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypedDict

from market_backfill.db.connection import Connector, run_transaction
from market_backfill.db.inserter import BatchInsertError
from market_backfill.gaps.detect import missing_runs, stored_minutes
from market_backfill.gaps.params import GapParams
from market_backfill.gaps.store import mark_gap, note_error
from market_backfill.planning import Chunk
from market_backfill.reingest.load import load_chunk
from market_backfill.reingest.params import parse_params as parse_reingest_params
from market_backfill.retry import Backoff
from market_backfill.sources import BarSource, PermanentSourceError, SourceError
from market_backfill.symbols import Series, settings_of
from market_backfill.trading_calendar import trading_minutes

log = logging.getLogger(__name__)

REPAIR_BACKOFF = Backoff(attempts=3, base_s=5.0, max_s=60.0)


class RepairOutcome(TypedDict):
    """The summary columns a repair adds to the run's table."""

    gap_status: str  # 'filled', 'open', or 'unfillable' after max_attempts without bars
    rows_written: int
    remaining: int  # minutes still missing in runs of at least min_gap_minutes


class RepairResult(RepairOutcome):
    """One repair's XCom."""

    symbol: str
    chunk: str
    gap_start: str
    minutes: int
    attempts: int  # repair attempts of this gap over all runs
    rows_in: int
    error: str | None


def _leave_open(connect: Connector, series: Series, chunk: Chunk, reason: str) -> None:
    run_transaction(connect, lambda c: note_error(c, series, chunk.start_dt, reason))


def repair_gap(
    gap: Mapping[str, Any],
    gp: GapParams,
    source: BarSource,
    connect: Connector,
    *,
    backoff: Backoff = REPAIR_BACKOFF,
) -> RepairResult:
    """Re-ingest one gap through the reingest code and the shared inserter, retrying
    transient failures with exponential backoff; then check again and mark the gap
    ``filled`` (no missing run of ``min_gap_minutes`` left) or leave it ``open`` with the
    reason, ``unfillable`` at its ``max_attempts``-th attempt without the bars. A source
    without the data is an outcome, not a failure; a refused source (a rejected key) fails
    the task and counts no attempt.

    Transaction behaviour: the bars go in the inserter's committed batches (upserts);
    the check and the gap's mark are one short transaction each."""
    chunk = Chunk.from_dict(gap)
    settings = settings_of(connect, chunk.symbol)
    series = settings.series(gap["roll_rule"], gap["rank"])  # the gap's own series
    parsed = parse_reingest_params(
        {
            **gp.reingest,
            "symbols": [chunk.symbol],
            "roll_rule": series.roll_rule,
            "rank": series.rank,
        }
    )
    rows_in = rows_written = 0
    error = None
    for attempt in range(1, backoff.attempts + 1):
        try:
            counts = load_chunk(chunk, settings, parsed, source, connect)
            rows_in, rows_written, error = counts["rows_in"], counts["rows_written"], None
            break
        except PermanentSourceError as exc:
            _leave_open(connect, series, chunk, str(exc))
            raise
        except (SourceError, BatchInsertError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if attempt < backoff.attempts:
                log.warning(
                    "%s: repair attempt %d/%d failed (%s); retrying in %.0fs",
                    gap["label"],
                    attempt,
                    backoff.attempts,
                    error,
                    backoff.delay(attempt),
                )
                backoff.wait(attempt)
    expected = trading_minutes(settings.calendar, chunk.start_dt, chunk.end_dt)
    stored = run_transaction(
        connect, lambda c: stored_minutes(c, series, chunk.start_dt, chunk.end_dt)
    )
    _, runs = missing_runs(expected, stored)
    remaining = int(runs[runs >= gp.min_gap_minutes].sum())
    filled = remaining == 0
    if not filled and error is None:
        error = (
            f"the source has no bars for {remaining} of the gap's {gap['minutes']} "
            f"minutes (rows from source: {rows_in})"
        )
    tries, status = run_transaction(
        connect,
        lambda c: mark_gap(
            c,
            series,
            chunk.start_dt,
            filled,
            None if filled else error,
            gp.max_attempts,
        ),
    )
    log.info(
        "%s: %s after %d repair attempt(s) in total; %d minutes still missing",
        gap["label"],
        status,
        tries,
        remaining,
    )
    return RepairResult(
        symbol=chunk.symbol,
        chunk=gap["label"],
        gap_start=gap["gap_start"],
        minutes=gap["minutes"],
        gap_status=status,
        attempts=tries,
        rows_in=rows_in,
        rows_written=rows_written,
        remaining=remaining,
        error=None if filled else error,
    )
