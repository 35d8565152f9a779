"""The ``feature_backfill`` params, validated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from market_backfill.errors import ParamError
from market_backfill.names import DEFAULT_BATCH_SIZE, DEFAULT_WRITERS, TIMEFRAMES, Timeframe
from market_backfill.params import (
    Params,
    date_range,
    param_batch_size,
    param_series,
    param_symbols,
    param_writers,
    parse_date,
)
from market_backfill.symbols import Symbol
from market_backfill.timeutil import day_start


@dataclass(frozen=True)
class FeatureParams:
    """Validated ``feature_backfill`` params.

    Modes: ``force_recalc`` recomputes from ``since`` (to ``end``, else the newest bar) and
    overwrites what differs; dates alone compute the rows missing in the window; neither
    catches up (new bars, the newest incomplete bars, bars changed since)."""

    symbols: tuple[Symbol, ...]
    window: tuple[datetime, datetime] | None
    timeframes: tuple[Timeframe, ...] = TIMEFRAMES
    force_recalc: bool = False
    since: datetime | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    roll_rule: str | None = None
    rank: int | None = None
    writers: int = DEFAULT_WRITERS  # connections a chunk's batches go over at once

    @property
    def agg_timeframes(self) -> tuple[Timeframe, ...]:
        """The requested timeframes rolled up from the 1-minute bars."""
        return tuple(tf for tf in self.timeframes if tf != "1m")


def param_timeframes(params: Params) -> tuple[Timeframe, ...]:
    """The ``timeframes`` param: a non-empty list of known timeframes (default: all six),
    in the canonical order."""
    value = params.get("timeframes") or list(TIMEFRAMES)
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ParamError(
            "timeframes", f"param 'timeframes' must be a list, e.g. {list(TIMEFRAMES)}"
        )
    unknown = sorted(set(value) - set(TIMEFRAMES))
    if unknown:
        raise ParamError(
            "timeframes", f"param 'timeframes': unknown {unknown}; known: {list(TIMEFRAMES)}"
        )
    return tuple(tf for tf in TIMEFRAMES if tf in value)


def parse_params(params: Params) -> FeatureParams:
    """Validate the DAG params; raise :class:`ParamError` naming the first bad one."""
    symbols = param_symbols(params)
    timeframes = param_timeframes(params)
    force = bool(params.get("force_recalc", False))
    since_day = parse_date(params.get("since"), "since")
    since = day_start(since_day) if since_day else None
    if force:
        if since is None:
            raise ParamError(
                "since", "param 'force_recalc' needs 'since' (YYYY-MM-DD): where to recompute from"
            )
        if params.get("start"):
            raise ParamError(
                "start", "param 'start' is not used with 'force_recalc': set 'since' (and 'end')"
            )
        end_day = parse_date(params.get("end"), "end")
        window = None
        if end_day is not None:
            window = (since, date_range({"start": str(end_day), "end": str(end_day)})[1])
            if window[1] <= since:
                raise ParamError("end", f"param 'end' ({end_day}) is before 'since' ({since_day})")
    else:
        if since is not None:
            raise ParamError("since", "param 'since' is used only with 'force_recalc': true")
        window = date_range(params)
    roll_rule, rank = param_series(params)
    return FeatureParams(
        symbols,
        window,
        timeframes,
        force,
        since,
        param_batch_size(params),
        roll_rule,
        rank,
        param_writers(params),
    )
