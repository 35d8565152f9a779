"""What Databento requests cost, asked before any is made (free metadata requests).

Shared by every stage that requests data: the ranges are clamped to what a dataset has
published for ``ohlcv-1m`` (``metadata.get_dataset_range``, its per-schema end), since
Databento's historical service serves "historical and delayed intraday data within the
exchange's live data restrictions" (databento.com/docs/quickstart) and refuses an end
past it with a 422; then each request is quoted (``metadata.get_cost`` and
``metadata.get_billable_size``) and the total is held against the run's cap.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from market_backfill.errors import ParamError
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.summary import format_table
from market_backfill.symbols import parse_symbol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataRequest:
    """One ``timeseries.get_range`` a run will make."""

    dataset: str
    symbols: tuple[str, ...]  # continuous symbols, e.g. NQ.v.0
    start: datetime
    end: datetime


class QuotedRequest(TypedDict):
    dataset: str
    symbols: str
    start: str
    end: str
    cost_usd: float
    billable_bytes: int


class Estimate(TypedDict):
    """A run's pre-flight answer (its plan's XCom ``estimate``, ``backfill_runs``)."""

    requests: list[QuotedRequest]
    total_usd: float
    total_bytes: int
    max_cost_usd: float
    clamped: list[str]  # items cut (or dropped) at the published end
    dry_run: bool


def published_ends(
    source: DatabentoSource, items: Sequence[Mapping[str, Any]]
) -> dict[str, datetime]:
    """The published end of the dataset of every item (by its ``symbol``)."""
    datasets = sorted({parse_symbol(item["symbol"]).dataset for item in items})
    return {dataset: source.published_end(dataset) for dataset in datasets}


def clamp(
    items: Sequence[Mapping[str, Any]], published: Mapping[str, datetime]
) -> tuple[list[Any], list[str]]:
    """Cut each item (a chunk or a gap: ``symbol``, ``start``, ``end``, ``label``) at its
    dataset's published end; drop items that start past it (each cut logged). Other keys
    are kept."""
    kept, notes = [], []
    for item in items:
        end = published[parse_symbol(item["symbol"]).dataset]
        if datetime.fromisoformat(item["end"]) <= end:
            kept.append(item)
            continue
        if datetime.fromisoformat(item["start"]) < end:
            kept.append({**item, "end": end.isoformat()})
            notes.append(
                f"{item['label']}: end {item['end']} cut to the published {end.isoformat()}"
            )
        else:
            notes.append(
                f"{item['label']}: starts after the published end {end.isoformat()}: dropped"
            )
    if notes:
        log.info(
            "%d of %d item(s) cut or dropped at the published end of the data:\n%s",
            len(notes),
            len(items),
            "\n".join(notes),
        )
    return kept, notes


def quote_all(
    source: DatabentoSource,
    requests: Sequence[DataRequest],
    *,
    max_cost_usd: float,
    dry_run: bool,
    clamped: Sequence[str],
) -> Estimate:
    """Quote every request (free metadata requests); log the table."""
    quoted: list[QuotedRequest] = []
    for req in requests:
        quote = source.quote(req.dataset, list(req.symbols), req.start, req.end)
        quoted.append(
            QuotedRequest(
                dataset=req.dataset,
                symbols=",".join(req.symbols),
                start=req.start.isoformat(),
                end=req.end.isoformat(),
                cost_usd=round(quote.cost_usd, 6),
                billable_bytes=quote.billable_bytes,
            )
        )
    estimate = Estimate(
        requests=quoted,
        total_usd=round(sum(q["cost_usd"] for q in quoted), 6),
        total_bytes=sum(q["billable_bytes"] for q in quoted),
        max_cost_usd=max_cost_usd,
        clamped=list(clamped),
        dry_run=dry_run,
    )
    log.info(
        "pre-flight: %d Databento request(s), estimated $%.2f for %d billable bytes (cap $%.2f)"
        "\n%s",
        len(quoted),
        estimate["total_usd"],
        estimate["total_bytes"],
        max_cost_usd,
        format_table(quoted, list(QuotedRequest.__annotations__)),
    )
    return estimate


def over_budget(estimate: Estimate) -> ParamError | None:
    """The error that stops a run whose estimate is over its cap, or None."""
    if estimate["total_usd"] <= estimate["max_cost_usd"]:
        return None
    return ParamError(
        "max_cost_usd",
        f"param 'max_cost_usd': the estimated cost ${estimate['total_usd']:.2f} of "
        f"{len(estimate['requests'])} Databento request(s) is over the cap "
        f"${estimate['max_cost_usd']:.2f}; nothing was requested. Raise 'max_cost_usd' "
        "to go on, narrow the range, or load DBN files (source 'dbn_file').",
    )
