"""The ``ohlcv_reingest`` params, validated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from market_backfill.errors import ParamError
from market_backfill.names import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_COST_USD,
    DEFAULT_SYMBOLS_PER_TASK,
    DEFAULT_WRITERS,
    REINGEST_SOURCES,
)
from market_backfill.params import (
    Params,
    date_range,
    param_batch_size,
    param_choice,
    param_cost_cap,
    param_series,
    param_symbols,
    param_symbols_per_task,
    param_writers,
)
from market_backfill.symbols import Symbol


@dataclass(frozen=True)
class ReingestParams:
    """Validated ``ohlcv_reingest`` params."""

    symbols: tuple[Symbol, ...]
    window: tuple[datetime, datetime] | None  # None: catch-up mode
    roll_rule: str | None  # None: each symbol's registry default
    rank: int | None
    source: str
    dbn_path: str | None
    batch_size: int = DEFAULT_BATCH_SIZE
    max_cost_usd: float = DEFAULT_MAX_COST_USD  # the Databento estimate a run may spend
    dry_run: bool = False  # plan and estimate only
    symbols_per_task: int = DEFAULT_SYMBOLS_PER_TASK  # symbols of a month in one mapped task
    writers: int = DEFAULT_WRITERS  # connections a chunk's batches go over at once


def parse_params(params: Params) -> ReingestParams:
    """Validate the DAG params; raise :class:`ParamError` naming the first bad one."""
    symbols = param_symbols(params)
    window = date_range(params)
    roll_rule, rank = param_series(params)
    source = param_choice(params, "source", REINGEST_SOURCES, "databento")
    dbn_path = params.get("dbn_path") or None
    if source == "dbn_file" and not dbn_path:
        raise ParamError("dbn_path", "param 'dbn_path' is required when source is 'dbn_file'")
    return ReingestParams(
        symbols,
        window,
        roll_rule,
        rank,
        source,
        dbn_path,
        param_batch_size(params),
        param_cost_cap(params),
        bool(params.get("dry_run", False)),
        param_symbols_per_task(params),
        param_writers(params),
    )
