"""Reading DAG params: every check raises :class:`ParamError` with the param's name.

Dates in params are ``YYYY-MM-DD`` (UTC, both ends inclusive); a validated range is the
half-open interval ``[start 00:00, end + 1 day 00:00)`` of UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from market_backfill.errors import ParamError
from market_backfill.names import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_COST_USD,
    DEFAULT_SYMBOLS_PER_TASK,
    DEFAULT_WRITERS,
    MAX_WRITERS,
)
from market_backfill.symbols import Symbol, check_roll, parse_symbols
from market_backfill.timeutil import day_start

Params = Mapping[str, Any]


def parse_date(value: Any, name: str) -> date | None:
    """``'YYYY-MM-DD'`` (or empty) -> date (or None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if not isinstance(value, str) or len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ParamError(
            name, f"param {name!r} must be a date 'YYYY-MM-DD', got {shown!r}"
        ) from None


def date_range(params: Params) -> tuple[datetime, datetime] | None:
    """The ``start``/``end`` params: both set -> ``[start 00:00, end+1 00:00)`` UTC; both
    empty -> None (catch-up mode)."""
    s, e = parse_date(params.get("start"), "start"), parse_date(params.get("end"), "end")
    if s is None and e is None:
        return None
    if s is None:
        raise ParamError(
            "start", "param 'start' is required when 'end' is set (leave both empty for catch-up)"
        )
    if e is None:
        raise ParamError(
            "end", "param 'end' is required when 'start' is set (leave both empty for catch-up)"
        )
    if e < s:
        raise ParamError("end", f"param 'end' ({e}) is before 'start' ({s})")
    return day_start(s), day_start(e) + timedelta(days=1)


def param_symbols(params: Params) -> tuple[Symbol, ...]:
    """The ``symbols`` param, parsed (malformed ones raise :class:`SymbolError`)."""
    return tuple(parse_symbols(params.get("symbols") or []))


def param_series(params: Params) -> tuple[str | None, int | None]:
    """The ``roll_rule`` and ``rank`` params; empty means the registry's default series."""
    roll_rule = params.get("roll_rule") or None
    rank = params.get("rank")
    check_roll("v" if roll_rule is None else roll_rule, 0 if rank is None else rank)
    return roll_rule, rank


def param_int(
    params: Params, name: str, default: int, minimum: int, maximum: int | None = None
) -> int:
    """An integer param of at least ``minimum`` and, given, at most ``maximum`` (booleans
    are not integers here)."""
    value = params.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ParamError(name, f"param {name!r} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ParamError(name, f"param {name!r} must be at most {maximum}, got {value}")
    return value


def param_choice(params: Params, name: str, choices: Collection[str], default: str) -> str:
    """A param that must be one of ``choices``."""
    value = params.get(name, default)
    if value not in choices:
        raise ParamError(name, f"param {name!r} must be one of {list(choices)}, got {value!r}")
    return value


def param_cost_cap(params: Params) -> float:
    """The ``max_cost_usd`` param: the Databento estimate a run may spend (USD, >= 0)."""
    cap = params.get("max_cost_usd", DEFAULT_MAX_COST_USD)
    if not isinstance(cap, int | float) or isinstance(cap, bool) or cap < 0:
        raise ParamError(
            "max_cost_usd", f"param 'max_cost_usd' must be a number of USD >= 0, got {cap!r}"
        )
    return float(cap)


def param_batch_size(params: Params) -> int:
    """The ``batch_size`` param (rows per committed batch), at least 1."""
    return param_int(params, "batch_size", DEFAULT_BATCH_SIZE, 1)


def param_writers(params: Params) -> int:
    """The ``writers`` param: connections a chunk writes its committed batches over at once,
    1 to ``MAX_WRITERS``."""
    return param_int(params, "writers", DEFAULT_WRITERS, 1, MAX_WRITERS)


def param_symbols_per_task(params: Params) -> int:
    """The ``symbols_per_task`` param (symbols of one month in one mapped task), at least 1."""
    return param_int(params, "symbols_per_task", DEFAULT_SYMBOLS_PER_TASK, 1)
