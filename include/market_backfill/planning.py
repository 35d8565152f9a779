"""The monthly chunk plan shared by every DAG.

A range is a half-open interval ``[start, end)`` of UTC datetimes. A chunk is one symbol
over one calendar month cut to the range; chunks travel through XCom as plain dicts
(:class:`ChunkData`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypedDict

from market_backfill.db.connection import Connection, Connector, run_transaction
from market_backfill.errors import ParamError
from market_backfill.symbols import Symbol, SymbolSettings, load_settings, parse_symbol
from market_backfill.timeutil import floor_minute

log = logging.getLogger(__name__)

Range = tuple[datetime, datetime]


@dataclass(frozen=True)
class PlanRequest:
    """What a stage's planner gets: where to read, the run's params and the run's end (its
    data interval end, or None). The plan's size is checked on its mapped tasks
    (:func:`group_chunks`), not here."""

    connect: Connector
    params: Mapping[str, Any]
    run_end: datetime | None = None
    now: datetime | None = None  # the current time; tests fix it
    interval: Range | None = None  # a scheduled or backfill run's data interval

    @property
    def catch_up_end(self) -> datetime:
        """Where catch-up stops: the run's end, never past now (both cut to the minute)."""
        now = floor_minute(self.now or datetime.now(UTC))
        return min(floor_minute(self.run_end) if self.run_end else now, now)


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
        return ChunkData(
            symbol=self.symbol, month=self.month, start=self.start, end=self.end, label=self.label
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        return cls(symbol=data["symbol"], month=data["month"], start=data["start"], end=data["end"])


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_floor(ts: datetime) -> datetime:
    """The start (UTC) of the calendar month holding ``ts``."""
    ts = ts.astimezone(UTC)
    return datetime(ts.year, ts.month, 1, tzinfo=UTC)


def month_ceil(ts: datetime) -> datetime:
    """The first month start (UTC) at or after ``ts``."""
    floor = month_floor(ts)
    if floor == ts:
        return floor
    following = next_month(floor.date())
    return datetime(following.year, following.month, 1, tzinfo=UTC)


def month_starts(start: datetime, end: datetime) -> list[datetime]:
    """Month boundaries (UTC) strictly inside ``(start, end)``, with ``start`` first."""
    out = [start]
    cursor = date(start.year, start.month, 1)
    while True:
        cursor = next_month(cursor)
        boundary = datetime(cursor.year, cursor.month, 1, tzinfo=UTC)
        if boundary >= end:
            return out
        out.append(boundary)


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


def plan(ranges: Mapping[Symbol, Range | Sequence[Range]]) -> list[ChunkData]:
    """Chunks for every symbol's range (or ranges), symbol-major; ranges of a symbol that
    meet in one month make one chunk spanning them (the mapped tasks they make are
    counted against Airflow's ``max_map_length`` by :func:`group_chunks`)."""
    chunks = []
    for sym, value in ranges.items():
        by_month: dict[str, Chunk] = {}
        spans = [value] if value and isinstance(value[0], datetime) else value
        for start, end in spans:  # type: ignore[misc]
            for c in monthly_chunks(sym, start, end):
                had = by_month.get(c.month)
                by_month[c.month] = (
                    c
                    if had is None
                    else Chunk(c.symbol, c.month, min(had.start, c.start), max(had.end, c.end))
                )
        chunks += [by_month[m].to_dict() for m in sorted(by_month)]
    return chunks


class GroupData(ChunkData):
    """Several symbols' chunks of one month mapped as one task: ``members`` are the
    chunks (each audited and summarised on its own), the header fields describe the
    group (first symbol, the month, the members' outer window, the group's label)."""

    members: list[ChunkData]


def group_label(members: Sequence[ChunkData]) -> str:
    """``NQ 2025-12`` for one symbol, ``ES,NQ 2025-12`` for two, ``ES,NQ,+8 2025-12``."""
    roots = [parse_symbol(m["symbol"]).root for m in members]
    shown = ",".join(roots[:2]) + (f",+{len(roots) - 2}" if len(roots) > 2 else "")
    return f"{shown} {members[0]['month']}"


def group_chunks(
    chunks: Sequence[ChunkData], per_task: int, *, max_groups: int = 1024
) -> list[GroupData]:
    """Up to ``per_task`` chunks of the same dataset and month in one group, in plan order
    within a month; refuses more groups than ``max_groups`` (Airflow's ``max_map_length``)
    with a message that says what to change."""
    by_key: dict[tuple[str, str], list[ChunkData]] = {}
    for chunk in chunks:
        key = (chunk["month"], parse_symbol(chunk["symbol"]).dataset)
        by_key.setdefault(key, []).append(chunk)
    groups = []
    for key in sorted(by_key):
        members = by_key[key]
        for i in range(0, len(members), per_task):
            part = members[i : i + per_task]
            groups.append(
                GroupData(
                    symbol=part[0]["symbol"],
                    month=part[0]["month"],
                    start=min(m["start"] for m in part),
                    end=max(m["end"] for m in part),
                    label=group_label(part),
                    members=list(part),
                )
            )
    if len(groups) > max_groups:
        raise ParamError(
            "symbols_per_task",
            f"the run makes {len(groups)} tasks (groups of up to {per_task} symbols x month), "
            f"more than Airflow's max_map_length of {max_groups}: raise 'symbols_per_task', "
            "split the range into several runs or raise [core] max_map_length",
        )
    return groups


def members_of(planned: Sequence[Mapping[str, Any]]) -> list[ChunkData]:
    """The per-symbol chunks of a plan, whether it holds groups or chunks."""
    out: list[ChunkData] = []
    for item in planned:
        out += item.get("members") or [item]  # type: ignore[list-item]
    return out


def summarize_plan(chunks: Sequence[ChunkData]) -> str:
    """One log line describing a plan."""
    if not chunks:
        return "0 chunks: nothing to do"
    symbols = sorted({c["symbol"] for c in chunks})
    return (
        f"{len(chunks)} chunks for {len(symbols)} symbol(s) {symbols}, "
        f"{min(c['start'] for c in chunks)} .. {max(c['end'] for c in chunks)}"
    )


def plan_ranges(
    request: PlanRequest,
    symbols: Sequence[Symbol],
    window: Range | None,
    catch_up: Callable[
        [Connection, Mapping[Symbol, SymbolSettings]], Mapping[Symbol, Range | Sequence[Range]]
    ],
) -> list[ChunkData]:
    """A run's chunks: with a ``window`` (the form's dates) every symbol gets it; else
    with the run's data interval, that; else ``catch_up`` reads each symbol's range from
    what is stored. Checks the symbols against the registry first (an unknown one is a
    :class:`SymbolError`); one read-only transaction."""
    window = window if window is not None else request.interval

    def ranges_of(conn: Connection) -> Mapping[Symbol, Range | Sequence[Range]]:
        registry = load_settings(conn, symbols)
        return dict.fromkeys(symbols, window) if window is not None else catch_up(conn, registry)

    ranges = run_transaction(request.connect, ranges_of, what="plan")
    chunks = plan(ranges)
    log.info("plan: %s", summarize_plan(chunks))
    return chunks
