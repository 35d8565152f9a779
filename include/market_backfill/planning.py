"""Date params, ranges and the monthly chunk plan shared by every DAG.

Dates in params are ``YYYY-MM-DD`` (UTC, both ends inclusive). Internally a range is a
half-open interval ``[start, end)`` of UTC datetimes. A chunk is one symbol over one
calendar month cut to the range; chunks travel through XCom as plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from market_backfill.symbols import (
    Symbol,
    SymbolError,
    SymbolSettings,
    load_settings,
    parse_symbol,
    parse_symbols,
)

MINUTE = timedelta(minutes=1)


class ParamError(ValueError):
    """A DAG param is invalid; the message names the param."""


def parse_date(value: Any, name: str) -> date | None:
    """``'YYYY-MM-DD'`` (or empty) -> date (or None); raise :class:`ParamError` naming ``name``."""
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
        raise ParamError(f"param {name!r} must be a date 'YYYY-MM-DD', got {shown!r}") from None


def param_symbols(params: Mapping[str, Any]) -> tuple[Symbol, ...]:
    """The ``symbols`` param, parsed; a malformed one is a :class:`ParamError`."""
    try:
        return tuple(parse_symbols(params.get("symbols") or []))
    except SymbolError as exc:
        raise ParamError(f"param 'symbols': {exc}") from None


def param_batch_size(params: Mapping[str, Any], default: int = 500) -> int:
    """The ``batch_size`` param (rows per committed batch), at least 1."""
    batch_size = int(params.get("batch_size", default))
    if batch_size < 1:
        raise ParamError(f"param 'batch_size' must be >= 1, got {batch_size}")
    return batch_size


def require_known(conn: Any, symbols: Sequence[Symbol]) -> dict[Symbol, SymbolSettings]:
    """Registry rows of ``symbols``; an unknown symbol is a :class:`ParamError`."""
    try:
        return load_settings(conn, symbols)
    except SymbolError as exc:
        raise ParamError(f"param 'symbols': {exc}") from None


def day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def date_range(start: Any, end: Any) -> tuple[datetime, datetime] | None:
    """Validate ``start``/``end`` params: both set -> ``[start 00:00, end+1 00:00)`` UTC;
    both empty -> None (catch-up mode). Anything else raises :class:`ParamError`."""
    s, e = parse_date(start, "start"), parse_date(end, "end")
    if s is None and e is None:
        return None
    if s is None:
        raise ParamError(
            "param 'start' is required when 'end' is set (leave both empty for catch-up)"
        )
    if e is None:
        raise ParamError(
            "param 'end' is required when 'start' is set (leave both empty for catch-up)"
        )
    if e < s:
        raise ParamError(f"param 'end' ({e}) is before 'start' ({s})")
    return day_start(s), day_start(e) + timedelta(days=1)


def floor_minute(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return ts.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Chunk:
    """One mapped task's work: ``symbol`` over ``[start, end)`` inside one calendar month."""

    symbol: str
    month: str
    start: str
    end: str

    @property
    def label(self) -> str:
        return f"{parse_symbol(self.symbol).root} {self.month}"

    @property
    def start_dt(self) -> datetime:
        return datetime.fromisoformat(self.start)

    @property
    def end_dt(self) -> datetime:
        return datetime.fromisoformat(self.end)

    def to_dict(self) -> dict[str, str]:
        return {**asdict(self), "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        return cls(symbol=data["symbol"], month=data["month"], start=data["start"], end=data["end"])


def month_starts(start: datetime, end: datetime) -> list[datetime]:
    """Month boundaries strictly inside ``(start, end)``, with ``start`` first."""
    out = [start]
    cursor = datetime(start.year, start.month, 1, tzinfo=UTC)
    while True:
        cursor = datetime(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1, tzinfo=UTC)
        if cursor >= end:
            return out
        out.append(cursor)


def monthly_chunks(symbol: Symbol | str, start: datetime, end: datetime) -> list[Chunk]:
    """Cut ``[start, end)`` into calendar-month chunks for one symbol (empty if start >= end)."""
    key = str(symbol)
    if start >= end:
        return []
    bounds = [*month_starts(start, end), end]
    return [
        Chunk(key, f"{a:%Y-%m}", a.isoformat(), b.isoformat())
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def plan(
    ranges: Mapping[Symbol, tuple[datetime, datetime]], *, max_chunks: int = 1024
) -> list[dict[str, str]]:
    """Chunks for every symbol's range, symbol-major; refuse plans over ``max_chunks``
    (Airflow's ``max_map_length``) with a message that says how to split the run."""
    chunks = [c.to_dict() for sym, (s, e) in ranges.items() for c in monthly_chunks(sym, s, e)]
    if len(chunks) > max_chunks:
        raise ParamError(
            f"the range makes {len(chunks)} chunks (symbol x month), more than Airflow's "
            f"max_map_length of {max_chunks}: split it into several runs or raise "
            "[core] max_map_length"
        )
    return chunks


def summarize_plan(chunks: Sequence[Mapping[str, str]]) -> str:
    """One log line describing a plan."""
    if not chunks:
        return "0 chunks: nothing to do"
    symbols = sorted({c["symbol"] for c in chunks})
    return (
        f"{len(chunks)} chunks for {len(symbols)} symbol(s) {symbols}, "
        f"{min(c['start'] for c in chunks)} .. {max(c['end'] for c in chunks)}"
    )
