"""The pre-flight of an ``ohlcv_reingest`` run with the Databento source, in its ``plan``
task: the chunks clamped to the published data, and exactly the data requests they will
make quoted (:mod:`market_backfill.sources.costs`): with dates or a data interval the
chunks of one month share one request per dataset (every symbol of it), in catch-up mode
each chunk makes its own; with ``databento_batch``, one batch job per dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from market_backfill.planning import ChunkData
from market_backfill.reingest.params import ReingestParams
from market_backfill.sources.costs import DataRequest, Estimate, clamp, published_ends, quote_all
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.symbols import Symbol, SymbolSettings, parse_symbol


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
    batch: bool = False,
) -> tuple[list[ChunkData], Estimate]:
    """The chunks clamped to the published data, and the estimate of their requests
    (``batch``: of the batch jobs that hold them)."""
    from market_backfill.reingest.batch import batch_requests

    kept, notes = clamp(chunks, published_ends(source, chunks))
    if batch:
        requests = batch_requests(kept, parsed, registry)
    else:
        requests = data_requests(kept, parsed, registry, shared=shared)
    estimate = quote_all(
        source, requests, max_cost_usd=parsed.max_cost_usd, dry_run=parsed.dry_run, clamped=notes
    )
    return kept, estimate
