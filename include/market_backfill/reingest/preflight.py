"""The pre-flight of a Databento run, in its ``plan`` task: what will be requested, what it
costs, and whether to go on. Only free metadata requests are made here.

- The range is clamped to what the dataset has published for ``ohlcv-1m``
  (``metadata.get_dataset_range``, its per-schema end): Databento's historical service
  serves "historical and delayed intraday data within the exchange's live data
  restrictions" (databento.com/docs/quickstart), so the newest minutes of a scheduled
  run's day may not be published yet; asking beyond the end is refused with a 422.
- Exactly the data requests the chunks will make are quoted (``metadata.get_cost`` and
  ``metadata.get_billable_size``): with dates or a data interval the chunks of one month
  share one request per dataset (every symbol of it); in catch-up mode each chunk makes
  its own.
- Over ``max_cost_usd`` the run stops before any data request; ``dry_run`` stops after
  the estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from market_backfill.errors import ParamError
from market_backfill.planning import Chunk, ChunkData
from market_backfill.reingest.params import ReingestParams
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.summary import format_table
from market_backfill.symbols import Symbol, SymbolSettings, parse_symbol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataRequest:
    """One ``timeseries.get_range`` the run will make."""

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
    """The pre-flight's answer (the plan's XCom ``estimate``, ``backfill_runs``)."""

    requests: list[QuotedRequest]
    total_usd: float
    total_bytes: int
    max_cost_usd: float
    clamped: list[str]  # chunks cut (or dropped) at the published end
    dry_run: bool


def clamp(
    chunks: Sequence[ChunkData], published: Mapping[str, datetime]
) -> tuple[list[ChunkData], list[str]]:
    """Cut each chunk at its dataset's published end; drop chunks that start past it."""
    kept, notes = [], []
    for data in chunks:
        chunk = Chunk.from_dict(data)
        end = published[parse_symbol(chunk.symbol).dataset]
        if chunk.end_dt <= end:
            kept.append(data)
            continue
        notes.append(f"{chunk.label}: end {chunk.end} cut to the published {end.isoformat()}")
        if chunk.start_dt < end:
            kept.append(Chunk(chunk.symbol, chunk.month, chunk.start, end.isoformat()).to_dict())
    return kept, notes


def data_requests(
    chunks: Sequence[ChunkData],
    parsed: ReingestParams,
    registry: Mapping[Symbol, SymbolSettings],
    *,
    shared: bool,
) -> list[DataRequest]:
    """The requests the chunks make: ``shared`` (dates or a data interval: the chunks of a
    month have one window), one per dataset and window with the run's every symbol of that
    dataset, as the response cache shares it; else one per chunk."""
    series = {sym: registry[sym].series(parsed.roll_rule, parsed.rank) for sym in parsed.symbols}
    grouped: dict[tuple[str, ...], set[str]] = {}
    for data in chunks:
        sym = parse_symbol(data["symbol"])
        window = (sym.dataset, data["start"], data["end"])
        if shared:
            key = window
            wanted = {s.continuous for k, s in series.items() if k.dataset == sym.dataset}
        else:
            key = (*window, data["symbol"])
            wanted = {series[sym].continuous}
        grouped.setdefault(key, set()).update(wanted)
    return [
        DataRequest(
            key[0],
            tuple(sorted(symbols)),
            datetime.fromisoformat(key[1]),
            datetime.fromisoformat(key[2]),
        )
        for key, symbols in grouped.items()
    ]


def preflight(
    chunks: Sequence[ChunkData],
    parsed: ReingestParams,
    registry: Mapping[Symbol, SymbolSettings],
    source: DatabentoSource,
    *,
    shared: bool,
) -> tuple[list[ChunkData], Estimate]:
    """Clamp the chunks to the published data and quote their requests; logs the table.
    Raises :class:`ParamError` (``max_cost_usd``) when the estimate is over the cap."""
    datasets = sorted({parse_symbol(c["symbol"]).dataset for c in chunks})
    published = {dataset: source.published_end(dataset) for dataset in datasets}
    kept, notes = clamp(chunks, published)
    for note in notes:
        log.info("pre-flight: %s", note)
    quoted: list[QuotedRequest] = []
    for req in data_requests(kept, parsed, registry, shared=shared):
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
        max_cost_usd=parsed.max_cost_usd,
        clamped=notes,
        dry_run=parsed.dry_run,
    )
    log.info(
        "pre-flight: %d Databento request(s), estimated $%.2f for %d billable bytes (cap $%.2f)"
        "\n%s",
        len(quoted),
        estimate["total_usd"],
        estimate["total_bytes"],
        parsed.max_cost_usd,
        format_table(quoted, list(QuotedRequest.__annotations__)),
    )
    return kept, estimate


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
