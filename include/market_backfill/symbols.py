"""Symbols (``DATASET:ROOT``) and the symbol registry table ``market_symbols``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from market_backfill.db.connection import Connection, Connector, run_transaction
from market_backfill.errors import ParamError
from market_backfill.names import DEFAULT_SESSION_ANCHOR, FIXED_SCALE, ROLL_RULES, SYMBOL_PATTERN

SYMBOL_RE = re.compile(SYMBOL_PATTERN)
NO_FLOOR = -(2**63)


class SymbolError(ParamError):
    """A malformed or unknown symbol (symbols come from the ``symbols`` param)."""

    def __init__(self, message: str) -> None:
        super().__init__("symbols", f"param 'symbols': {message}")


@dataclass(frozen=True)
class Symbol:
    """A registry symbol such as ``GLBX.MDP3:NQ``."""

    dataset: str
    root: str

    @property
    def key(self) -> str:
        return f"{self.dataset}:{self.root}"

    def continuous(self, roll_rule: str = "v", rank: int = 0) -> str:
        """Databento continuous symbol, e.g. ``NQ.v.0`` (``stype_in=continuous``)."""
        check_roll(roll_rule, rank)
        return f"{self.root}.{roll_rule}.{rank}"

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True)
class Series:
    """A continuous series: a symbol with a roll rule and a rank (``NQ.v.0``), the
    identity of stored bars, events and gaps."""

    symbol: Symbol
    roll_rule: str
    rank: int

    def __post_init__(self) -> None:
        check_roll(self.roll_rule, self.rank)

    @property
    def continuous(self) -> str:
        """The Databento continuous symbol, e.g. ``NQ.v.0``."""
        return self.symbol.continuous(self.roll_rule, self.rank)

    @property
    def key(self) -> tuple[str, str, int]:
        """(symbol, roll_rule, rank): the series columns of every table."""
        return self.symbol.key, self.roll_rule, self.rank

    def __str__(self) -> str:
        return f"{self.symbol.dataset}:{self.continuous}"


def check_roll(roll_rule: str, rank: int) -> None:
    """A series' roll rule and rank; a bad one is a :class:`ParamError` naming the param."""
    if roll_rule not in ROLL_RULES:
        raise ParamError(
            "roll_rule",
            f"param 'roll_rule' must be one of {sorted(ROLL_RULES)} (v volume, c calendar, "
            f"n open interest), got {roll_rule!r}",
        )
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
        raise ParamError("rank", f"param 'rank' must be an integer >= 0, got {rank!r}")


def parse_symbol(text: str) -> Symbol:
    """Parse ``DATASET:ROOT``; raise :class:`SymbolError` naming the bad value."""
    if not isinstance(text, str):
        raise SymbolError(f"symbol must be a string like 'GLBX.MDP3:NQ', got {text!r}")
    match = SYMBOL_RE.match(text.strip())
    if not match:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise SymbolError(
            f"malformed symbol {shown!r}: expected DATASET:ROOT in capitals, e.g. 'GLBX.MDP3:NQ'"
        )
    dataset, root = match.string.split(":")
    return Symbol(dataset, root)


def parse_symbols(values: Iterable[str]) -> list[Symbol]:
    """Parse a list of symbols, dropping duplicates but keeping order."""
    out: list[Symbol] = []
    for value in values:
        sym = parse_symbol(value)
        if sym not in out:
            out.append(sym)
    if not out:
        raise SymbolError("symbols must name at least one symbol, e.g. ['GLBX.MDP3:NQ']")
    return out


@dataclass(frozen=True)
class SymbolSettings:
    """One registry row: what every stage needs to know about a symbol."""

    symbol: Symbol
    roll_rule: str
    rank: int
    price_floor: Decimal | None  # None: no floor, prices may be negative
    calendar: str
    discontinuity: Decimal = Decimal(500)
    small_range: Decimal = Decimal(10)
    small_range_gap: Decimal = Decimal(150)
    flat_discontinuity: Decimal = Decimal(50)
    tick_size: Decimal | None = None
    session_anchor: str = DEFAULT_SESSION_ANCHOR  # where its sessions open, "HH:MM Area/City"

    def series(self, roll_rule: str | None = None, rank: int | None = None) -> Series:
        """The series a run asks for; what it leaves out is the registry's default."""
        return Series(
            self.symbol,
            self.roll_rule if roll_rule is None else roll_rule,
            self.rank if rank is None else rank,
        )

    @property
    def price_floor_fixed(self) -> int:
        """The floor as int64 fixed-point (1e-9), comparable with Databento prices; with no
        floor the lowest int64, below every price."""
        if self.price_floor is None:
            return NO_FLOOR
        return int(self.price_floor * FIXED_SCALE)


_REGISTRY_SQL = (
    "SELECT symbol, roll_rule, rank, price_floor, calendar, discontinuity, small_range, "
    "small_range_gap, flat_discontinuity, tick_size, session_anchor FROM market_symbols "
    "WHERE symbol = ANY(%s)"
)


def load_settings(conn: Connection, symbols: Sequence[Symbol]) -> dict[Symbol, SymbolSettings]:
    """Read the registry rows of ``symbols``; raise :class:`SymbolError` for unknown ones."""
    keys = [s.key for s in symbols]
    with conn.cursor() as cur:
        cur.execute(_REGISTRY_SQL, (keys,))
        rows = cur.fetchall()
    conn.commit()
    found = {
        parse_symbol(r[0]): SymbolSettings(
            symbol=parse_symbol(r[0]),
            roll_rule=r[1],
            rank=r[2],
            price_floor=None if r[3] is None else Decimal(r[3]),
            calendar=r[4],
            discontinuity=Decimal(r[5]),
            small_range=Decimal(r[6]),
            small_range_gap=Decimal(r[7]),
            flat_discontinuity=Decimal(r[8]),
            tick_size=None if r[9] is None else Decimal(r[9]),
            session_anchor=r[10],
        )
        for r in rows
    }
    unknown = [s.key for s in symbols if s not in found]
    if unknown:
        raise SymbolError(
            f"unknown symbol(s) {unknown}: add them to the market_symbols registry first "
            "(python -m market_backfill.registry add DATASET:ROOT --calendar ... --tick-size ...)"
        )
    return found


def settings_of(connect: Connector, symbol_key: str) -> SymbolSettings:
    """The registry row of one symbol, read in its own short transaction."""
    symbol = parse_symbol(symbol_key)
    return run_transaction(connect, lambda c: load_settings(c, [symbol]), what="registry")[symbol]
