"""The ``gap_detection`` params, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from market_backfill.names import DEFAULT_MAX_COST_USD
from market_backfill.params import (
    Params,
    date_range,
    param_cost_cap,
    param_int,
    param_series,
    param_symbols,
)
from market_backfill.reingest.params import parse_params as parse_reingest_params
from market_backfill.symbols import Symbol
from market_backfill.timeutil import floor_minute

DEFAULT_LOOKBACK = timedelta(days=30)
REPAIR_SOURCE_PARAMS = ("source", "dbn_path", "roll_rule", "rank")
"""The ``ohlcv_reingest`` params a repair loads with."""


@dataclass(frozen=True)
class GapParams:
    """Validated ``gap_detection`` params."""

    symbols: tuple[Symbol, ...]
    start: datetime
    end: datetime
    min_gap_minutes: int
    repair: bool
    max_repairs: int
    reingest: Mapping[str, Any]
    max_attempts: int = 3  # repairs without bars before a gap is unfillable
    roll_rule: str | None = None  # the series checked; None: the registry's default
    rank: int | None = None
    max_cost_usd: float = DEFAULT_MAX_COST_USD  # what the repairs' requests may cost
    dry_run: bool = False  # detect and estimate the repairs, repair nothing
    retry_unfillable: bool = False
    max_lag_minutes: int = 60  # a series whose newest bar lags more trading minutes is stale


def parse_params(
    params: Params,
    *,
    now: datetime | None = None,
    interval: tuple[datetime, datetime] | None = None,
) -> GapParams:
    """Validate the params. The range checked: the form's dates; else a scheduled or
    backfill run's data ``interval`` with the look-back (30 days) before it; else the last
    30 days up to now. Never later than now."""
    now = floor_minute(now or datetime.now(UTC))
    symbols = param_symbols(params)
    window = date_range(params)
    if window is None and interval is not None:
        window = (interval[0] - DEFAULT_LOOKBACK, interval[1])
    start, end = window if window else (now - DEFAULT_LOOKBACK, now)
    end = min(end, now)
    min_gap = param_int(params, "min_gap_minutes", 5, 1)
    max_repairs = param_int(params, "max_repairs", 100, 0)
    repair = bool(params.get("repair", True))
    max_attempts = param_int(params, "max_attempts", 3, 1)
    roll_rule, rank = param_series(params)
    retry_unfillable = bool(params.get("retry_unfillable", False))
    reingest = {k: params[k] for k in REPAIR_SOURCE_PARAMS if k in params}
    if repair:  # the repair's source params must be valid before anything runs
        parse_reingest_params({**reingest, "symbols": [s.key for s in symbols]})
    return GapParams(
        symbols,
        start,
        end,
        min_gap,
        repair,
        max_repairs,
        reingest,
        max_attempts=max_attempts,
        retry_unfillable=retry_unfillable,
        roll_rule=roll_rule,
        rank=rank,
        max_cost_usd=param_cost_cap(params),
        dry_run=bool(params.get("dry_run", False)),
        max_lag_minutes=param_int(params, "max_lag_minutes", 60, 1),
    )
