"""Adding a root to the symbol registry (``market_symbols``), checked before it is written.

    python -m market_backfill.registry add GLBX.MDP3:ZL --calendar CMEGlobex_Oilseeds \\
        --tick-size 0.01 [--price-floor 0 | --no-floor] [--roll-rule v] [--rank 0] \\
        [--session-anchor "19:00 America/Chicago"] [--url postgresql://...]
    python -m market_backfill.registry list [--url ...]

The database is ``--url``, else the ``market_db`` Airflow connection
(``AIRFLOW_CONN_MARKET_DB``). ``add`` creates the tables if needed and writes one row in
one transaction; adding a root again replaces its settings. Every value is checked first:
the calendar must be a ``pandas_market_calendars`` name (close names are suggested), the
tick size positive, the anchor ``HH:MM Area/City``.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from market_backfill.db.connection import Connection, Connector, run_transaction
from market_backfill.errors import ParamError
from market_backfill.names import DEFAULT_SESSION_ANCHOR
from market_backfill.symbols import check_roll, parse_symbol

_ANCHOR = re.compile(r"^([01]\d|2[0-3]):([0-5]\d) (\S+)$")
_UPSERT = """
INSERT INTO market_symbols
    (symbol, dataset, root, roll_rule, rank, price_floor, calendar, tick_size, session_anchor)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (symbol) DO UPDATE SET
    roll_rule = EXCLUDED.roll_rule, rank = EXCLUDED.rank, price_floor = EXCLUDED.price_floor,
    calendar = EXCLUDED.calendar, tick_size = EXCLUDED.tick_size,
    session_anchor = EXCLUDED.session_anchor
"""
_LIST = (
    "SELECT symbol, roll_rule, rank, price_floor, calendar, tick_size, session_anchor "
    "FROM market_symbols ORDER BY symbol"
)


@dataclass(frozen=True)
class RootEntry:
    """One registry row, validated."""

    symbol: str
    roll_rule: str
    rank: int
    price_floor: Decimal | None
    calendar: str
    tick_size: Decimal
    session_anchor: str

    def values(self) -> tuple:
        sym = parse_symbol(self.symbol)
        return (
            sym.key,
            sym.dataset,
            sym.root,
            self.roll_rule,
            self.rank,
            self.price_floor,
            self.calendar,
            self.tick_size,
            self.session_anchor,
        )


def check_calendar(name: str) -> str:
    """``name`` if ``pandas_market_calendars`` knows it, else a :class:`ParamError`
    suggesting the closest names."""
    import pandas_market_calendars as mcal

    names = mcal.get_calendar_names()
    if name in names:
        return name
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.4)
    hint = f"; did you mean {close}?" if close else ""
    raise ParamError("calendar", f"unknown calendar {name!r} (pandas_market_calendars){hint}")


def check_anchor(anchor: str) -> str:
    """A session anchor ``HH:MM Area/City`` with a known time zone."""
    match = _ANCHOR.match(anchor)
    if match is None:
        raise ParamError(
            "session_anchor", f"session anchor must be 'HH:MM Area/City', got {anchor!r}"
        )
    try:
        ZoneInfo(match.group(3))
    except (ZoneInfoNotFoundError, ValueError):
        raise ParamError("session_anchor", f"unknown time zone {match.group(3)!r}") from None
    return anchor


def _decimal(value: str, name: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ParamError(name, f"{name} must be a number, got {value!r}") from None


def entry(
    symbol: str,
    calendar: str,
    tick_size: str,
    price_floor: str | None,
    roll_rule: str = "v",
    rank: int = 0,
    session_anchor: str = DEFAULT_SESSION_ANCHOR,
) -> RootEntry:
    """Validate a root's settings (raises :class:`ParamError` naming the bad one)."""
    key = parse_symbol(symbol).key
    check_roll(roll_rule, rank)
    tick = _decimal(tick_size, "tick_size")
    if tick <= 0:
        raise ParamError("tick_size", f"tick_size must be positive, got {tick_size}")
    floor = None if price_floor is None else _decimal(price_floor, "price_floor")
    return RootEntry(
        key, roll_rule, rank, floor, check_calendar(calendar), tick, check_anchor(session_anchor)
    )


def add_root(connect: Connector, root: RootEntry) -> None:
    """Write (insert or replace) one registry row, creating the tables first if needed."""
    from market_backfill.db.schema import apply_schema

    def work(conn: Connection) -> None:
        with conn.cursor() as cur:
            cur.execute(_UPSERT, root.values())

    run_transaction(connect, apply_schema, what="schema")
    run_transaction(connect, work, what="registry")


def list_roots(connect: Connector) -> list[tuple]:
    """Every registry row (symbol, roll rule, rank, floor, calendar, tick, anchor)."""

    def work(conn: Connection) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(_LIST)
            return cur.fetchall()

    return run_transaction(connect, work, what="registry")


def _connector(url: str | None) -> Connector:
    if url:
        import psycopg

        return lambda: psycopg.connect(url)
    from market_backfill.airflow.connections import hook_connector

    return hook_connector()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m market_backfill.registry")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a root (or replace its settings)")
    add.add_argument("symbol", help="DATASET:ROOT, e.g. GLBX.MDP3:ZL")
    add.add_argument("--calendar", required=True, help="a pandas_market_calendars name")
    add.add_argument("--tick-size", required=True)
    floor = add.add_mutually_exclusive_group()
    floor.add_argument("--price-floor", default="0", help="bars below it are refused (0)")
    floor.add_argument("--no-floor", action="store_true", help="prices may be negative")
    add.add_argument("--roll-rule", default="v", choices=["v", "c", "n"])
    add.add_argument("--rank", type=int, default=0)
    add.add_argument("--session-anchor", default=DEFAULT_SESSION_ANCHOR)
    listing = sub.add_parser("list", help="print the registry")
    for p in (add, listing):
        p.add_argument("--url", help="the market database (default: connection market_db)")
    args = parser.parse_args(argv)
    try:
        if args.command == "add":
            root = entry(
                args.symbol,
                args.calendar,
                args.tick_size,
                None if args.no_floor else args.price_floor,
                args.roll_rule,
                args.rank,
                args.session_anchor,
            )
            add_root(_connector(args.url), root)
            print(f"registered {root.symbol}: {root.calendar}, tick {root.tick_size}")
        else:
            for row in list_roots(_connector(args.url)):
                print("  ".join("-" if v is None else str(v) for v in row))
    except ParamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
