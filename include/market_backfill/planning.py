"""The monthly chunk plan shared by every DAG.

A range is a half-open interval ``[start, end)`` of UTC datetimes. A chunk is one symbol
over one calendar month cut to the range; chunks travel through XCom as plain dicts
(:class:`ChunkData`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from market_backfill.errors import ParamError
from market_backfill.symbols import Symbol, parse_symbol


class ChunkData(TypedDict):
    """A chunk as it travels through XCom (the mapped task's argument)."""

    symbol: str
    month: str
    start: str
    end: str
    label: str


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

    def to_dict(self) -> ChunkData:
        return ChunkData(**asdict(self), label=self.label)

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
) -> list[ChunkData]:
    """Chunks for every symbol's range, symbol-major; refuse plans over ``max_chunks``
    (Airflow's ``max_map_length``) with a message that says how to split the run."""
    chunks = [c.to_dict() for sym, (s, e) in ranges.items() for c in monthly_chunks(sym, s, e)]
    if len(chunks) > max_chunks:
        raise ParamError(
            "end",
            f"the range makes {len(chunks)} chunks (symbol x month), more than Airflow's "
            f"max_map_length of {max_chunks}: split it into several runs or raise "
            "[core] max_map_length",
        )
    return chunks


def summarize_plan(chunks: Sequence[ChunkData]) -> str:
    """One log line describing a plan."""
    if not chunks:
        return "0 chunks: nothing to do"
    symbols = sorted({c["symbol"] for c in chunks})
    return (
        f"{len(chunks)} chunks for {len(symbols)} symbol(s) {symbols}, "
        f"{min(c['start'] for c in chunks)} .. {max(c['end'] for c in chunks)}"
    )
